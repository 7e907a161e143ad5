import GraftAutodiff
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

/// Finite-difference checks of every adapter parameter's gradient, through the
/// whole (frozen) tiny encoder.
@Suite struct AdapterGradients {
    /// Differences step over ReLU's kink unless `epsilon` is small; smooth adapters take a larger one (less rounding noise).
    func check(_ adapter: any Adapter, epsilon: Float = 1e-2) throws {
        let backbone = try TinyBackbone.make()
        randomize(adapter, seed: 11)
        let model = try graft(backbone, [("a", adapter)])
        try model.activate(.single("a"))
        let parameters = adapter.namedParameters()
        let errors = parameterGradientErrors(parameters.map(\.parameter), epsilon: epsilon) { tape in
            model(tinyInput, context: model.context(tape: tape))
        }
        for (named, error) in zip(parameters, errors) {
            #expect(error < 1e-2, "\(adapter.method) \(named.name): relative error \(error)")
        }
    }

    @Test func lora() throws {
        try check(LoRAAdapter(LoRAConfiguration(rank: 2, alpha: 6, targets: LinearSlot.allCases),
                              model: TinyBackbone.make().configuration, seed: 0))
    }

    @Test(arguments: [BottleneckConfiguration.seqBnInv, .doubleSeqBn, .parBn])
    func bottleneck(configuration: BottleneckConfiguration) throws {
        try check(BottleneckAdapter(configuration, model: TinyBackbone.make().configuration, seed: 0),
                  epsilon: configuration.activation == .relu ? 1e-3 : 1e-2)
    }

    /// The gradient of the shared pools flows through the gathers of every layer.
    @Test func mosThroughTheGathers() throws {
        try check(MoSAdapter(MoSConfiguration(rank: 3, validRank: 2, shards: 2, privateRank: 1, alpha: 6, targets: [.value, .ffnOut]),
                             model: TinyBackbone.make().configuration, seed: 0))
    }
}
