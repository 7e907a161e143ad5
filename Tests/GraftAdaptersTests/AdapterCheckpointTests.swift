import Foundation
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

@Suite struct AdapterCheckpoints {
    let backbone: Backbone

    init() throws { backbone = try TinyBackbone.make() }

    /// A checkpoint of a freshly made, randomised adapter (and head).
    func checkpoint(_ configuration: AdapterConfiguration, head: HeadConfiguration? = nil) throws -> AdapterCheckpoint {
        let adapter = try configuration.makeAdapter(model: backbone.configuration, seed: 0)
        randomize(adapter, seed: 1)
        let module = head?.makeHead(backbone: backbone, seed: 2)
        if let module { randomize(module, seed: 3) }
        return try AdapterCheckpoint(name: "task", adapter: adapter, configuration: configuration, head: module,
                                     headConfiguration: head, backbone: backbone)
    }

    func values(_ module: (any Module)?) -> [String: Tensor] {
        Dictionary(uniqueKeysWithValues: (module?.namedParameters() ?? []).map { ($0.name, $0.parameter.value) })
    }

    static let cases: [(AdapterConfiguration, HeadConfiguration?)] = [
        (AdapterConfiguration(BottleneckConfiguration.seqBnInv), .maskedLM),
        (AdapterConfiguration(LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .ffnOut], leaveOut: [1])),
         .sequenceClassification(labels: ["neg", "pos", "mixed"], pooling: .mean)),
        (AdapterConfiguration(MoSConfiguration(rank: 4, validRank: 2, indexSeed: 9)), .tokenClassification(labels: ["NOUN", "VERB"])),
        (AdapterConfiguration(BottleneckConfiguration.parBn), nil),
        (AdapterConfiguration(LoRAConfiguration(rank: 2)), .sequenceClassification(labels: ["a", "b"], pooling: .first, hiddenActivation: .tanh)),
        (AdapterConfiguration(LoRAConfiguration(rank: 2)), .tokenClassification(labels: ["x", "y", "z"], hiddenActivation: .gelu)),
    ]

    @Test(arguments: cases)
    func roundTripKeepsWeightsConfigurationHeadAndOutput(configuration: AdapterConfiguration, head: HeadConfiguration?) throws {
        let saved = try checkpoint(configuration, head: head)
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try saved.save(to: path)
        let loaded = try AdapterCheckpoint.load(from: path, backbone: backbone)
        #expect(loaded.name == "task" && loaded.configuration == configuration && loaded.headConfiguration == head)
        #expect(loaded.backboneName == backbone.name && loaded.backboneChecksum == backbone.checksum)
        #expect(values(loaded.adapter) == values(saved.adapter))
        #expect(values(loaded.head) == values(saved.head))
        if let mlm = loaded.head as? MaskedLMHead { #expect(mlm.decoderWeight === backbone.encoder.embeddings.word.weight) }
        let model = try graft(backbone, [("saved", saved.adapter), ("loaded", loaded.adapter)])
        try model.activate(.single("saved"))
        let expected = output(model)
        try model.activate(.single("loaded"))
        #expect(output(model) == expected)

        let header = try AdapterCheckpoint.header(of: path)
        #expect(header.adapterParameterCount == configuration.parameterCount(model: backbone.configuration))
        #expect(header.summary.contains("method: \(configuration.method)"))
        #expect(header.summary.contains("backbone: tiny-xlmr, checksum \(backbone.checksum)"))
        if let activation = head?.hiddenActivation { #expect(header.summary.contains("hidden layer with \(activation.rawValue)")) }
    }

    @Test func anotherBackboneIsRefusedNamingBothChecksums() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try checkpoint(AdapterConfiguration(LoRAConfiguration())).save(to: path)
        let other = try TinyBackbone.make(seed: 1)
        let error = #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: path, backbone: other) }
        #expect(error?.description.contains(backbone.checksum) == true)
        #expect(error?.description.contains(other.checksum) == true)
    }

    /// Rewrites the stored configuration so that the weights no longer fit it.
    func loadWithConfiguration(_ stored: AdapterConfiguration, extra: String? = nil) throws -> AdapterCheckpointError? {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try checkpoint(AdapterConfiguration(LoRAConfiguration(rank: 2))).save(to: path)
        do {
            let file = try HDF5File(path: path, mode: .update)
            try file.setAttribute(try AdapterCheckpoint.json(stored), named: "adapter_config")
            if let extra { try file.write(Tensor(zeros: [2]), at: extra) }
        }
        return #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: path, backbone: backbone) }
    }

    @Test func missingUnexpectedAndMisshapenWeightsAreNamed() throws {
        let missing = try loadWithConfiguration(AdapterConfiguration(LoRAConfiguration(rank: 2, targets: [.query, .key, .value])))
        #expect(missing?.description.contains("lacks 4 adapter weights: layer.0.key.lora_A, layer.0.key.lora_B") == true)
        let unexpected = try loadWithConfiguration(AdapterConfiguration(LoRAConfiguration(rank: 2)), extra: "adapter/layer.0.query.lora_C")
        #expect(unexpected?.description.contains("unexpected adapter weights: layer.0.query.lora_C") == true)
        let misshapen = try loadWithConfiguration(AdapterConfiguration(LoRAConfiguration(rank: 3)))
        #expect(misshapen?.description.contains("adapter/layer.0.query.lora_A has shape [2, 16]; expected [3, 16]") == true)
        let headless = try loadWithConfiguration(AdapterConfiguration(LoRAConfiguration(rank: 2)), extra: "head/classifier.bias")
        #expect(headless?.description.contains("unexpected head weights: classifier.bias") == true)
    }

    @Test func aCheckpointCanLiveInAGroupOfALargerFile() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let saved = try checkpoint(AdapterConfiguration(MoSConfiguration()), head: .maskedLM)
        do {
            let file = try HDF5File(path: path, mode: .create)
            try file.write(Tensor(zeros: [3]), at: "optimizer/step")
            try saved.write(to: file, group: "training/task")
        }
        let file = try HDF5File(path: path, mode: .read)
        let loaded = try AdapterCheckpoint.read(from: file, group: "training/task", backbone: backbone)
        #expect(values(loaded.adapter) == values(saved.adapter) && values(loaded.head) == values(saved.head))
        #expect(throws: AdapterCheckpointError.notAnAdapter(source: path, found: "none")) {
            try AdapterCheckpoint.read(from: file, backbone: backbone)
        }
    }

    @Test func weightsMustFitTheirConfiguration() throws {
        let adapter = LoRAAdapter(LoRAConfiguration(rank: 2), model: backbone.configuration, seed: 0)
        #expect(throws: AdapterCheckpointError.self) {
            try AdapterCheckpoint(name: "a", adapter: adapter, configuration: AdapterConfiguration(LoRAConfiguration(rank: 4)), backbone: backbone)
        }
        let head = HeadConfiguration.maskedLM.makeHead(backbone: backbone, seed: 0)
        #expect(throws: AdapterCheckpointError.self) {
            try AdapterCheckpoint(name: "a", adapter: adapter, configuration: AdapterConfiguration(LoRAConfiguration(rank: 2)), head: head, backbone: backbone)
        }
        #expect(throws: AdapterCheckpointError.self) {
            try AdapterCheckpoint(name: "a", adapter: adapter, configuration: AdapterConfiguration(LoRAConfiguration(rank: 2)), head: head,
                                  headConfiguration: .tokenClassification(labels: ["x"]), backbone: backbone)
        }
        let twoLayers = HeadConfiguration.tokenClassification(labels: ["x"], hiddenActivation: .tanh).makeHead(backbone: backbone, seed: 0)
        #expect(throws: AdapterCheckpointError.self) {  // a hidden layer the configuration does not have
            try AdapterCheckpoint(name: "a", adapter: adapter, configuration: AdapterConfiguration(LoRAConfiguration(rank: 2)), head: twoLayers,
                                  headConfiguration: .tokenClassification(labels: ["x"]), backbone: backbone)
        }
    }

    @Test func headConfigurationIsStoredAsKindAndLabels() throws {
        let json = try AdapterCheckpoint.json(HeadConfiguration.sequenceClassification(labels: ["a", "b"], pooling: .first))
        #expect(json == #"{"kind":"sequence_classification","labels":["a","b"],"pooling":"first"}"#)
        #expect(try AdapterCheckpoint.json(HeadConfiguration.maskedLM) == #"{"kind":"masked_lm"}"#)
        #expect(try AdapterCheckpoint.json(HeadConfiguration.tokenClassification(labels: ["x"])) == #"{"kind":"token_classification","labels":["x"]}"#)
        let hidden = HeadConfiguration.tokenClassification(labels: ["x"], hiddenActivation: .relu)
        let hiddenJSON = try AdapterCheckpoint.json(hidden)
        #expect(hiddenJSON == #"{"hidden_activation":"relu","kind":"token_classification","labels":["x"]}"#)
        #expect(try JSONDecoder().decode(HeadConfiguration.self, from: Data(hiddenJSON.utf8)) == hidden)
        #expect(try JSONDecoder().decode(HeadConfiguration.self, from: Data(#"{"kind":"sequence_classification","labels":["a"],"pooling":"mean"}"#.utf8))
            == .sequenceClassification(labels: ["a"], pooling: .mean, hiddenActivation: nil))
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(HeadConfiguration.self, from: Data(#"{"kind":"qa"}"#.utf8)) }
    }
}
