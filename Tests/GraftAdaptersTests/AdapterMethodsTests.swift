import Foundation
import GraftNN
import Testing
@testable import GraftAdapters

/// The method registry: every method stored and read back by name, nothing decoded by fallback.
@Suite struct AdapterMethodsRegistry {
    let model = EncoderConfiguration(vocabularySize: 30, hiddenSize: 32, layerCount: 3, headCount: 4, intermediateSize: 48)

    @Test func namesAreTheRegisteredMethods() {
        #expect(AdapterMethods.names == ["double_seq_bn", "double_seq_bn_inv", "lora", "mos", "par_bn", "seq_bn", "seq_bn_inv", "unipt"])
        #expect(AdapterMethods.methods(taking: .validRank) == ["mos"])
        #expect(AdapterMethods.methods(taking: .leaveOut) == AdapterMethods.names.filter { $0 != "unipt" })
    }

    /// Every method round-trips through its stored JSON, and makes an adapter that reports its name.
    @Test(arguments: AdapterMethods.names)
    func storedConfigurationReadsBack(name: String) throws {
        let configuration = try AdapterConfiguration(method: name)
        let json = try JSONEncoder().encode(configuration)
        let stored = try JSONSerialization.jsonObject(with: json) as! [String: Any]
        #expect(stored["method"] as? String == name)
        #expect(try JSONDecoder().decode(AdapterConfiguration.self, from: json) == configuration)
        #expect(try configuration.makeAdapter(model: model, seed: 0).method == name)
    }

    /// A stored name that its settings contradict, or that nothing registers, is an error.
    @Test func contradictoryOrUnknownStoredMethodsAreRefused() throws {
        var stored = try JSONSerialization.jsonObject(with: JSONEncoder().encode(AdapterConfiguration(method: "double_seq_bn"))) as! [String: Any]
        stored["method"] = "seq_bn"
        #expect(throws: ConfigurationError.self) {
            try JSONDecoder().decode(AdapterConfiguration.self, from: JSONSerialization.data(withJSONObject: stored))
        }
        stored["method"] = "houlsby"
        #expect(throws: ConfigurationError.self) {
            try JSONDecoder().decode(AdapterConfiguration.self, from: JSONSerialization.data(withJSONObject: stored))
        }
        #expect(throws: ConfigurationError.self) { try AdapterConfiguration(method: "houlsby") }
    }

    /// Overrides change only the settings a method takes; settings of different methods never compare equal.
    @Test func overridesApplyToTheirMethod() throws {
        let overrides = AdapterOverrides(reductionFactor: 4, rank: 2, leaveOut: [1])
        #expect(overrides.given == [.reductionFactor, .rank, .leaveOut])
        #expect(LoRAConfiguration().applying(overrides) == LoRAConfiguration(rank: 2, leaveOut: [1]))
        var bottleneck = BottleneckConfiguration.seqBn
        bottleneck.reductionFactor = 4
        bottleneck.leaveOut = [1]
        #expect(BottleneckConfiguration.seqBn.applying(overrides) == bottleneck)
        #expect(AdapterConfiguration(LoRAConfiguration()) != AdapterConfiguration(MoSConfiguration()))
    }

    /// Leaving out a layer the model does not have is an error for every method that leaves out layers.
    @Test(arguments: AdapterMethods.methods(taking: .leaveOut))
    func leavingOutAMissingLayerIsRefused(name: String) throws {
        let settings = try AdapterMethods.defaults(name).applying(AdapterOverrides(leaveOut: [3]))
        #expect(throws: ConfigurationError.self) { try AdapterConfiguration(settings).makeAdapter(model: model, seed: 0) }
    }
}
