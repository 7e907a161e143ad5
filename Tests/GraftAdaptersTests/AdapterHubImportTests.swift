import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import Testing
@testable import GraftAdapters

/// What AdapterHub computed on a fixture's inputs: the last hidden state and, with a head, its logits.
struct AdapterHubExpected: Decodable {
    let ids: [[Int]]
    let attentionMask: [[Int]]
    let lastHiddenState: [[[Float]]]
    let logits: Logits?
    enum CodingKeys: String, CodingKey { case ids, attentionMask = "attention_mask", lastHiddenState = "last_hidden_state", logits }

    /// A classification head's logits, `[batch][labels]`, or a tagging head's, `[batch][length][labels]`.
    enum Logits: Decodable {
        case sequence([[Float]]), token([[[Float]]])
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let token = try? container.decode([[[Float]]].self) { self = .token(token) } else { self = .sequence(try container.decode([[Float]].self)) }
        }
    }

    var input: EncoderInput {
        EncoderInput(ids: ids.flatMap { $0 }, attentionMask: attentionMask.flatMap { $0 }, batchSize: ids.count, length: ids[0].count)
    }

    /// `values` (`[batch][length][width]`) at the real tokens, each with its row in `[batch * length, width]`.
    func tokenRows(_ values: [[[Float]]]) -> [(row: Int, values: [Float])] {
        attentionMask.enumerated().flatMap { example, mask in
            mask.indices.filter { mask[$0] == 1 }.map { (example * ids[0].count + $0, values[example][$0]) }
        }
    }

    /// The largest difference between the rows of `found` (`[rows, width]`) and `expected`.
    static func largestDifference(_ found: Tensor, _ expected: [(row: Int, values: [Float])]) -> Float {
        let width = found.shape[1]
        return expected.flatMap { row, values in zip(found.scalars[(row * width)..<((row + 1) * width)], values).map { abs($0 - $1) } }.max() ?? .infinity
    }
}

/// Adapters saved by AdapterHub `adapters` load into Graft (`make_adapterhub_fixture.py`, `make_adapterhub_lora_fixture.py`).
@Suite struct AdapterHubImport {
    /// A MAD-X language adapter (seq_bn_inv) saved by `save_adapter` computes what AdapterHub computes with it.
    @Test func aSavedLanguageAdapterGivesAdapterHubsOutput() throws {
        let backbone = try Backbone.importModel(from: fixture("adapterhub_bert"))
        let checkpoint = try AdapterCheckpoint.load(from: fixture("adapterhub_seq_bn_inv"), backbone: backbone)
        #expect(checkpoint.configuration.method == "seq_bn_inv")
        #expect(checkpoint.head == nil)
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("lang", checkpoint.adapter)
        try model.activate(.single("lang"))
        let expected = try JSONDecoder().decode(AdapterHubExpected.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("adapterhub_expected.json"))))
        let largest = AdapterHubExpected.largestDifference(model(expected.input, context: model.context()).value,
                                                          expected.tokenRows(expected.lastHiddenState))
        #expect(largest < 1e-5, "largest difference \(largest)")
    }

    /// For each fixture, its base model, its LoRA and its head.
    static let savedWithHeads: [(String, String, LoRAConfiguration, HeadConfiguration)] = [
        ("adapterhub_lora_bert", "adapterhub_bert", LoRAConfiguration(rank: 4, alpha: 6, targets: [.query, .key, .value, .ffnIn, .ffnOut]),
         HeadConfiguration.sequenceClassification(labels: ["neg", "neu", "pos"], pooling: .first)),
        ("adapterhub_lora_xlmr", "adapterhub_xlmr", LoRAConfiguration(rank: 2, alpha: 8, targets: [.query, .value], leaveOut: [0]),
         HeadConfiguration.tokenClassification(labels: ["O", "B-X", "I-X", "B-Y"])),
        ("adapterhub_head2_bert", "adapterhub_bert", LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value]),
         HeadConfiguration.sequenceClassification(labels: ["neg", "neu", "pos"], pooling: .first, hiddenActivation: .tanh)),
        ("adapterhub_head2_xlmr_gelu", "adapterhub_xlmr", LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value]),
         HeadConfiguration.tokenClassification(labels: ["O", "B-X", "I-X"], hiddenActivation: .gelu)),
        ("adapterhub_head2_xlmr_relu", "adapterhub_xlmr", LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value]),
         HeadConfiguration.sequenceClassification(labels: ["no", "yes"], pooling: .first, hiddenActivation: .relu)),
    ]

    /// LoRA with a prediction head, saved by `save_adapter(..., with_head=True)` from AdapterHub's BERT (every
    /// matrix, classification head, torch.save files) and XLM-R (q and v of layer 1, tagging head, safetensors)
    /// models, and with two-layer heads (`make_adapterhub_lora_fixture.py`: AdapterHub's default classification
    /// head, tanh, on BERT; a GELU tagging head and a ReLU classification head on XLM-R): Graft reads the
    /// configuration, the labels, the hidden layer's activation and the weights, and computes AdapterHub's
    /// hidden states and logits.
    @Test(arguments: savedWithHeads)
    func aSavedLoRAWithItsHeadGivesAdapterHubsOutputs(directory: String, base: String, lora: LoRAConfiguration, head: HeadConfiguration) throws {
        let backbone = try Backbone.importModel(from: fixture(base))
        let checkpoint = try AdapterCheckpoint.load(from: fixture(directory), backbone: backbone)
        #expect(checkpoint.configuration == AdapterConfiguration(lora))
        #expect(checkpoint.headConfiguration == head)
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("task", checkpoint.adapter)
        try model.activate(.single("task"))
        let expected = try #require(try ["adapterhub_lora_expected.json", "adapterhub_head2_expected.json"].lazy.compactMap { file in
            try JSONDecoder().decode([String: AdapterHubExpected].self, from: Data(contentsOf: URL(fileURLWithPath: fixture(file))))[directory]
        }.first)
        let layers = try #require(checkpoint.head as? any ClassifierLayers)
        #expect((layers.hiddenLayer != nil) == (head.hiddenActivation != nil) && layers.hiddenLayer?.activation == head.hiddenActivation)
        let context = model.context()
        let hidden = model(expected.input, context: context)
        let largest = AdapterHubExpected.largestDifference(hidden.value, expected.tokenRows(expected.lastHiddenState))
        #expect(largest < 1e-5, "hidden states: largest difference \(largest)")

        let (logits, rows): (Tensor, [(row: Int, values: [Float])])
        switch (try #require(checkpoint.head), try #require(expected.logits)) {
        case let (classifier as SequenceClassificationHead, .sequence(values)):
            (logits, rows) = (classifier(hidden, input: expected.input, context: context).value, values.enumerated().map { (row: $0.offset, values: $0.element) })
        case let (tagger as TokenClassificationHead, .token(values)):
            (logits, rows) = (tagger(hidden, context: context).value, expected.tokenRows(values))
        case let (head, values):
            Issue.record("a \(type(of: head)) for logits \(values)")
            return
        }
        let largestLogit = AdapterHubExpected.largestDifference(logits, rows)
        #expect(largestLogit < 1e-5, "logits: largest difference \(largestLogit)")
    }

    /// For each fixture, its base model, the file changed and the cases: a key, its JSON value and the message.
    static let unsupportedSettings: [(String, String, String, [(key: String, json: String, message: String)])] = [
        ("adapterhub_seq_bn_inv", "adapterhub_bert", "adapter_config.json",
         [("use_gating", "true", "use_gating"), ("non_linearity", "\"leakyrelu\"", "non_linearity"), ("mh_adapter", "true", "placement"),
          ("inv_adapter", "\"glow\"", "inv_adapter"), ("architecture", "\"prefix_tuning\"", "architecture \"prefix_tuning\"")]),
        ("adapterhub_lora_xlmr", "adapterhub_xlmr", "adapter_config.json",
         [("use_gating", "true", "use_gating true"), ("composition_mode", "\"scale\"", "composition_mode \"scale\""),
          ("use_dora", "true", "use_dora true"), ("vera_d", "0.1", "vera_d 0.1"), ("dtype", "\"float16\"", "dtype \"float16\""),
          ("attn_matrices", "[\"q\", \"o\"]", "attn_matrices entry \"o\""), ("r", "2.5", "r must be a whole number"), ("alpha", "\"8\"", "alpha must be a number"),
          ("selfattn_lora", "false", "adapts no matrix")]),
        ("adapterhub_lora_bert", "adapterhub_bert", "head_config.json",
         [("layers", "3", "layers 3"), ("head_type", "\"multilabel_classification\"", "head_type \"multilabel_classification\""),
          ("use_pooler", "true", "use_pooler true"), ("bias", "false", "bias false"), ("num_labels", "4", "label2id must number the 4 labels"),
          ("label2id", "{\"neg\": 0, \"neu\": 0, \"pos\": 2}", "label2id must number")]),
        ("adapterhub_head2_bert", "adapterhub_bert", "head_config.json",
         [("layers", "3", "layers 3.0 (Graft's sequence classification head is one linear layer, or two"),
          ("activation_function", "\"leakyrelu\"", "activation_function \"leakyrelu\" (Graft's hidden layer has relu, swish, gelu or tanh)"),
          ("activation_function", "null", "activation_function null"), ("use_pooler", "true", "use_pooler true"),
          ("bias", "false", "bias false")]),
        ("adapterhub_head2_xlmr_gelu", "adapterhub_xlmr", "head_config.json",
         [("layers", "4", "layers 4.0 (Graft's token classification head is one linear layer, or two"),
          ("activation_function", "\"gelu_new\"", "activation_function \"gelu_new\"")]),
    ]

    /// Settings Graft has no form for are refused, naming them: each case sets one key of the fixture's
    /// configuration file to a JSON value, and loading must fail with an error containing the message.
    @Test(arguments: unsupportedSettings)
    func unsupportedSettingsAreNamed(directory source: String, base: String, file: String, cases: [(key: String, json: String, message: String)]) throws {
        let directory = NSTemporaryDirectory() + "graft-adapterhub-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: fixture(source), toPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + file
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let backbone = try Backbone.importModel(from: fixture(base))
        _ = try AdapterCheckpoint.load(from: directory, backbone: backbone)  // the unchanged copy loads
        for (key, value, message) in cases {
            var json = try JSONSerialization.jsonObject(with: original) as! [String: Any], config = json["config"] as! [String: Any]
            config[key] = try JSONSerialization.jsonObject(with: Data(value.utf8), options: .fragmentsAllowed)
            json["config"] = config
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: directory, backbone: backbone) }
            #expect(error?.description.contains(message) == true, "\(key): \(String(describing: error))")
        }
    }

    /// A head whose configuration is there without its weights is an error naming the files looked for.
    @Test func aHeadWithoutWeightsIsRefused() throws {
        let directory = NSTemporaryDirectory() + "graft-adapterhub-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: fixture("adapterhub_lora_xlmr"), toPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.removeItem(atPath: directory + "/model_head.safetensors")
        let backbone = try Backbone.importModel(from: fixture("adapterhub_xlmr"))
        let error = #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: directory, backbone: backbone) }
        #expect(error == .invalid(source: directory, detail: "no pytorch_model_head.bin or model_head.safetensors"))
    }
}

/// Graft's adapters and heads written in AdapterHub's format (`Tests/GraftAdaptersTests/Fixtures/check_adapterhub_export.py`
/// checks that AdapterHub loads them and computes the same).
@Suite struct AdapterHubExport {
    /// Every parameter's name and values, to compare two modules exactly.
    func values(_ module: any Module) -> [String] { module.namedParameters().map { "\($0.name) \($0.parameter.value.scalars)" } }

    /// Random values for every parameter, so that a swapped or dropped tensor shows.
    func randomise(_ module: any Module, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for (_, parameter) in module.namedParameters() {
            parameter.value = .normal(shape: parameter.value.shape, standardDeviation: 0.1, generator: &generator)
        }
    }

    @Test(arguments: ["seq_bn_inv", "double_seq_bn", "par_bn"])
    func writtenAdaptersReadBackExactly(method: String) throws {
        let backbone = try Backbone.importModel(from: fixture("adapterhub_bert"))
        var settings = try #require(try AdapterMethods.defaults(method) as? BottleneckConfiguration)
        settings.reductionFactorPerLayer = ["1": 4]
        let adapter = BottleneckAdapter(settings, model: backbone.configuration, seed: 3)
        randomise(adapter, seed: 4)
        let directory = NSTemporaryDirectory() + "graft-adapterhub-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AdapterHubFormat.write(adapter, name: "lang", model: backbone.configuration, to: directory)
        let read = try AdapterHubFormat.read(directory: directory, model: backbone.configuration)
        #expect(read.configuration == AdapterConfiguration(adapter.configuration))
        #expect(values(read.adapter) == values(adapter))
    }

    /// A LoRA adapter and its classification or tagging head (one layer, or two with each hidden activation),
    /// written by Graft, read back with the same configuration, labels, activation and weights; the head's
    /// configuration names the AdapterHub model class AdapterHub requires of a head it loads, the number of
    /// layers and the activation.
    @Test(arguments: [HeadConfiguration.sequenceClassification(labels: ["neg", "pos", "neu"], pooling: .first),
                      .tokenClassification(labels: ["O", "B-PER"]),
                      .sequenceClassification(labels: ["neg", "pos"], pooling: .first, hiddenActivation: .tanh),
                      .sequenceClassification(labels: ["neg", "pos"], pooling: .first, hiddenActivation: .swish),
                      .tokenClassification(labels: ["O", "B-PER", "I-PER"], hiddenActivation: .gelu),
                      .tokenClassification(labels: ["O", "B-PER"], hiddenActivation: .relu)])
    func writtenLoRAAndHeadReadBackExactly(head headConfiguration: HeadConfiguration) throws {
        let backbone = try Backbone.importModel(from: fixture("adapterhub_xlmr"))
        let settings = LoRAConfiguration(rank: 3, alpha: 2.5, dropout: 0.1, targets: [.query, .value, .ffnOut], leaveOut: [1])
        let adapter = LoRAAdapter(settings, model: backbone.configuration, seed: 3)
        randomise(adapter, seed: 4)
        let head = headConfiguration.makeHead(backbone: backbone, seed: 5)
        randomise(head, seed: 6)
        let directory = NSTemporaryDirectory() + "graft-adapterhub-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AdapterHubFormat.write(adapter, name: "task", model: backbone.configuration, to: directory)
        try AdapterHubFormat.writeHead(headConfiguration, weights: Dictionary(uniqueKeysWithValues: head.namedParameters().map { ($0.name, $0.parameter.value) }),
                                       name: "task", model: backbone.configuration, to: directory)
        let read = try AdapterCheckpoint.load(from: directory, backbone: backbone)
        #expect(read.configuration == AdapterConfiguration(settings))
        #expect(values(read.adapter) == values(adapter))
        #expect(read.headConfiguration == headConfiguration)
        #expect(values(try #require(read.head)) == values(head))
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/head_config.json"))) as? [String: Any]
        #expect(stored?["model_class"] as? String == "XLMRobertaAdapterModel")
        let config = stored?["config"] as? [String: Any]
        #expect(config?["layers"] as? Int == (headConfiguration.hiddenActivation == nil ? 1 : 2))
        #expect(config?["activation_function"] as? String == headConfiguration.hiddenActivation?.rawValue ?? "tanh")
        let names = try tensorArchive(at: directory + "/model_head.safetensors").tensorNames.sorted()
        #expect(names == (headConfiguration.hiddenActivation == nil ? ["heads.task.1.bias", "heads.task.1.weight"]
            : ["heads.task.1.bias", "heads.task.1.weight", "heads.task.4.bias", "heads.task.4.weight"]))
    }

    /// Adapters and heads with no AdapterHub form are refused, naming what has none.
    @Test func writingRefusesWhatAdapterHubCannotHold() throws {
        let model = try Backbone.importModel(from: fixture("adapterhub_bert")).configuration
        let directory = NSTemporaryDirectory() + "graft-adapterhub-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (adapter, message) in [
            (LoRAAdapter(LoRAConfiguration(targets: [.query, .attentionOutput]), model: model, seed: 0) as any Adapter, "attention.output.dense has no AdapterHub form"),
            (LoRAAdapter(LoRAConfiguration(rankStabilized: true), model: model, seed: 0), "rank-stabilised LoRA"),
            (try AdapterConfiguration(method: "mos").makeAdapter(model: model, seed: 0), "a mos adapter has no AdapterHub form"),
        ] {
            let error = #expect(throws: ConfigurationError.self) { try AdapterHubFormat.write(adapter, name: "x", model: model, to: directory) }
            #expect(error?.description.contains(message) == true, "\(String(describing: error))")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/adapter_config.json"))
        for (head, message) in [(HeadConfiguration.maskedLM, "masked-LM"), (.sequenceClassification(labels: ["a", "b"], pooling: .mean), "first token"),
                                (.tokenClassification(labels: ["a", "a"]), "distinct labels")] {
            #expect(AdapterHubFormat.headRefusal(head)?.contains(message) == true, "\(head)")
            #expect(throws: ConfigurationError.self) { try AdapterHubFormat.writeHead(head, weights: [:], name: "x", model: model, to: directory) }
        }
        #expect(AdapterHubFormat.headRefusal(.tokenClassification(labels: ["a", "b"])) == nil)
    }
}
