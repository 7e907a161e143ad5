import Foundation
import GraftAdapters
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing

/// `adapt params`, `merge`, `export` and `info` on adapter checkpoints.
@Suite struct AdapterCommands {
    /// `bert-base-multilingual-cased`'s config.json, a fixture of the adapter tests.
    let mbertConfig = adapterFixture("mbert_config.json")

    func params(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try runAdapt(["params", "--config", mbertConfig] + arguments)
    }

    @Test func paramsPrintsTheReferenceCountsForMBERT() throws {
        let total = 177_262_848
        for (arguments, trainable) in [(["--method", "seq_bn"], 894_528), (["--method", "seq_bn_inv"], 1_190_592),
                                       (["--method", "lora", "--rank", "8", "--targets", "query,value"], 294_912),
                                       (["--method", "mos", "--rank", "16", "--valid-rank", "8"], 294_912),
                                       (["--method", "seq_bn", "--reduction-factor", "32", "--leave-out", "0,1"], 10 * 37_656)] {
            let result = try params(arguments)
            #expect(result.status == 0, "\(result.error)")
            #expect(result.output == "trainable=\(trainable) total=\(total + trainable)\n")
        }
        #expect(try params(["--method", "lora", "--pooler"]).output == "trainable=294912 total=\(177_853_440 + 294_912)\n")
    }

    @Test func paramsRejectsFlagsOfAnotherMethodAndUnknownNames() throws {
        let misplaced = try params(["--method", "seq_bn", "--rank", "4"])
        #expect(misplaced.status != 0 && misplaced.error.contains("--rank does not apply to seq_bn"))
        let unknown = try params(["--method", "lora", "--targets", "query,gate"])
        #expect(unknown.status != 0 && unknown.error.contains("unknown target \"gate\""))
        let method = try params(["--method", "prefix"])
        #expect(method.status != 0 && method.error.contains("unknown adapter method \"prefix\""))
    }

    /// Sizes no model could hold are refused with the limit, never allocated or overflowed.
    @Test func paramsRefusesSizesBeyondTheModel() throws {
        for (arguments, message) in [(["--method", "lora", "--rank", "1000000"], "LoRA rank must be in 1...768"),
                                     (["--method", "lora", "--rank", "4611686018427387904"], "LoRA rank must be in 1...768"),
                                     (["--method", "mos", "--rank", "100000"], "MoS rank"),
                                     (["--method", "seq_bn", "--reduction-factor", "0.000001"], "at least 1/16")] {
            let result = try params(arguments)
            #expect(result.status != 0 && result.error.contains(message), "\(arguments): \(result.error)")
        }
    }

    /// A backbone file and a checkpoint of a randomised adapter trained on it.
    func files(_ configuration: AdapterConfiguration) throws -> (backbone: String, adapter: String, model: GraftedModel) {
        let backbone = try TinyBackbone.make()
        let backbonePath = TinyBackbone.temporaryPath(), adapterPath = TinyBackbone.temporaryPath()
        try backbone.save(to: backbonePath)
        let adapter = try configuration.makeAdapter(model: backbone.configuration, seed: 0)
        var generator = SeededGenerator(seed: 1)
        for (_, parameter) in adapter.namedParameters() {
            parameter.value = .normal(shape: parameter.value.shape, standardDeviation: 0.3, generator: &generator)
        }
        try AdapterCheckpoint(name: "task", adapter: adapter, configuration: configuration, backbone: backbone).save(to: adapterPath)
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("task", adapter)
        try model.activate(.single("task"))
        return (backbonePath, adapterPath, model)
    }

    let input = EncoderInput(padding: [[0, 5, 6, 7, 2], [0, 9, 2]], padID: 1)

    @Test(arguments: [AdapterConfiguration(LoRAConfiguration(rank: 2, alpha: 6, targets: [.query, .ffnOut])),
                      AdapterConfiguration(MoSConfiguration(rank: 4, validRank: 2))])
    func mergeWritesABackboneThatComputesTheAdaptedModel(configuration: AdapterConfiguration) throws {
        let (backbone, adapter, model) = try files(configuration)
        let output = TinyBackbone.temporaryPath()
        defer { for path in [backbone, adapter, output] { try? FileManager.default.removeItem(atPath: path) } }
        let result = try runAdapt(["merge", adapter, "--backbone", backbone, "--output", output])
        #expect(result.status == 0, "\(result.error)")
        let merged = try Backbone.load(from: output)
        #expect(merged.name == "tiny-xlmr+task")
        let expected = model(input, context: model.context()).value
        #expect(merged.encoder(input, context: .inference()).value.maxAbsDifference(expected) < 1e-4)

        let directory = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let exported = try runAdapt(["merge", adapter, "--backbone", backbone, "--output", directory, "--format", "transformers"])
        #expect(exported.status == 0, "\(exported.error)")
        let imported = try Backbone.importHuggingFace(directory: directory)
        #expect(imported.encoder(input, context: .inference()).value.maxAbsDifference(merged.encoder(input, context: .inference()).value) == 0)
    }

    @Test func mergeRefusesABottleneckAdapter() throws {
        let (backbone, adapter, _) = try files(AdapterConfiguration(BottleneckConfiguration.seqBn))
        defer { for path in [backbone, adapter] { try? FileManager.default.removeItem(atPath: path) } }
        let result = try runAdapt(["merge", adapter, "--backbone", backbone, "--output", TinyBackbone.temporaryPath()])
        #expect(result.status != 0 && result.error.contains("(seq_bn) cannot be merged"))
    }

    @Test func exportWritesAPeftDirectoryThatLoadsBack() throws {
        let (backbone, adapter, model) = try files(AdapterConfiguration(MoSConfiguration(rank: 4, validRank: 2, targets: [.key, .ffnIn])))
        let directory = TinyBackbone.temporaryPath("")
        defer { for path in [backbone, adapter, directory] { try? FileManager.default.removeItem(atPath: path) } }
        let result = try runAdapt(["export", adapter, "--format", "peft", "--output", directory])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("peft LoRA, rank 4"))
        let loaded = try AdapterCheckpoint.load(from: directory, backbone: try Backbone.load(from: backbone))
        #expect(loaded.configuration == AdapterConfiguration(LoRAConfiguration(rank: 4, alpha: 8, targets: [.key, .ffnIn])))
        try model.add("peft", loaded.adapter)
        let expected = model(input, context: model.context()).value
        try model.activate(.single("peft"))
        #expect(model(input, context: model.context()).value.maxAbsDifference(expected) < 1e-5)

        let bottleneck = try files(AdapterConfiguration(BottleneckConfiguration.parBn))
        defer { for path in [bottleneck.backbone, bottleneck.adapter] { try? FileManager.default.removeItem(atPath: path) } }
        let refused = try runAdapt(["export", bottleneck.adapter, "--format", "peft", "--output", directory])
        #expect(refused.status != 0 && refused.error.contains("is a par_bn adapter; peft export supports adapters that are changes of linear weights only"))
    }

    /// `adapt export --format adapterhub` of a Graft checkpoint file with a classification head (AdapterHub's
    /// LoRA fixture, read by Graft and saved as a checkpoint) writes a directory that reads back as the same
    /// adapter and head; an MoS adapter is written as the LoRA it is; a masked-LM head is left out, with the
    /// reason; LoRA on `attention.output.dense` is refused.
    @Test func exportWritesAnAdapterHubLoRAWithItsHead() throws {
        let directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let backbone = try Backbone.importModel(from: adapterFixture("adapterhub_bert"))
        let original = try AdapterCheckpoint.load(from: adapterFixture("adapterhub_lora_bert"), backbone: backbone)
        try original.save(to: directory + "/task.h5")
        let result = try runAdapt(["export", directory + "/task.h5", "--format", "adapterhub", "--output", directory + "/task"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("AdapterHub lora adapter \"adapterhub_lora_bert\", 1536 parameters; sequence_classification head with 3 labels"),
                "\(result.output)")
        let exported = try AdapterCheckpoint.load(from: directory + "/task", backbone: backbone)
        #expect(exported.configuration == original.configuration && exported.headConfiguration == original.headConfiguration)
        let values = { (module: (any Module)?) in module?.namedParameters().map { "\($0.name) \($0.parameter.value.scalars)" } ?? [] }
        #expect(values(exported.adapter) == values(original.adapter) && values(exported.head) == values(original.head))
        #expect(values(exported.head).count == 2)

        let language = try AdapterCheckpoint(name: "lang", adapter: original.adapter, configuration: original.configuration,
                                             head: HeadConfiguration.maskedLM.makeHead(backbone: backbone, seed: 0),
                                             headConfiguration: .maskedLM, backbone: backbone)
        try language.save(to: directory + "/lang.h5")
        let withoutHead = try runAdapt(["export", directory + "/lang.h5", "--format", "adapterhub", "--output", directory + "/lang"])
        #expect(withoutHead.status == 0, "\(withoutHead.error)")
        #expect(withoutHead.output.contains("the masked_lm head is not exported: Graft does not write masked-LM heads"), "\(withoutHead.output)")
        #expect(!FileManager.default.fileExists(atPath: directory + "/lang/head_config.json"))

        let mos = try files(AdapterConfiguration(MoSConfiguration(rank: 4, validRank: 2, targets: [.key, .ffnIn])))
        defer { for path in [mos.backbone, mos.adapter] { try? FileManager.default.removeItem(atPath: path) } }
        let desharded = try runAdapt(["export", mos.adapter, "--format", "adapterhub", "--output", directory + "/mos"])
        #expect(desharded.status == 0 && desharded.output.contains("AdapterHub lora adapter"), "\(desharded.error)")
        let loaded = try AdapterCheckpoint.load(from: directory + "/mos", backbone: try Backbone.load(from: mos.backbone))
        let expected = mos.model(input, context: mos.model.context()).value
        try mos.model.add("hub", loaded.adapter)
        try mos.model.activate(.single("hub"))
        #expect(mos.model(input, context: mos.model.context()).value.maxAbsDifference(expected) < 1e-5)

        let attentionOutput = try files(AdapterConfiguration(LoRAConfiguration(targets: [.attentionOutput])))
        defer { for path in [attentionOutput.backbone, attentionOutput.adapter] { try? FileManager.default.removeItem(atPath: path) } }
        let refused = try runAdapt(["export", attentionOutput.adapter, "--format", "adapterhub", "--output", directory + "/refused"])
        #expect(refused.status != 0 && refused.error.contains("LoRA on attention.output.dense has no AdapterHub form"), "\(refused.error)")
    }

    /// `adapt export --format adapterhub` of an AdapterHub directory with a two-layer head (AdapterHub's default
    /// classification head, `make_adapterhub_lora_fixture.py`), read on `--backbone`, writes the head back as
    /// AdapterHub saved it: two layers with tanh, and the same tensors by the same names with the same values.
    @Test func exportWritesATwoLayerAdapterHubHeadBackAsItWasSaved() throws {
        let directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let imported = try runAdapt(["import", adapterFixture("adapterhub_bert"), "--output", directory + "/bert.h5"])
        #expect(imported.status == 0, "\(imported.error)")
        let fixture = adapterFixture("adapterhub_head2_bert")
        let result = try runAdapt(["export", fixture, "--backbone", directory + "/bert.h5", "--format", "adapterhub", "--output", directory + "/task"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("sequence_classification head with 3 labels"), "\(result.output)")
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/task/head_config.json"))) as? [String: Any]
        let config = try #require(stored?["config"] as? [String: Any])
        #expect(config["layers"] as? Int == 2 && config["activation_function"] as? String == "tanh" && config["head_type"] as? String == "classification")
        let (written, saved) = (try tensorArchive(at: directory + "/task/model_head.safetensors"), try tensorArchive(at: fixture + "/pytorch_model_head.bin"))
        // The exported head is named after the directory it was read from.
        let renamed = { (name: String) in name.replacingOccurrences(of: "heads.task.", with: "heads.adapterhub_head2_bert.") }
        #expect(written.tensorNames == saved.tensorNames.map(renamed) && written.tensorNames.count == 4)
        for name in saved.tensorNames { #expect(try written.tensor(named: renamed(name)) == saved.tensor(named: name), "\(name)") }
        let backbone = try Backbone.load(from: directory + "/bert.h5")
        let (original, exported) = (try AdapterCheckpoint.load(from: fixture, backbone: backbone), try AdapterCheckpoint.load(from: directory + "/task", backbone: backbone))
        #expect(exported.headConfiguration == original.headConfiguration && exported.headConfiguration?.hiddenActivation == .tanh)
    }

    @Test func infoDescribesAnAdapterCheckpoint() throws {
        let (backbone, adapter, _) = try files(AdapterConfiguration(LoRAConfiguration(rank: 2)))
        defer { for path in [backbone, adapter] { try? FileManager.default.removeItem(atPath: path) } }
        let result = try runAdapt(["info", adapter])
        #expect(result.status == 0, "\(result.error)")
        for line in ["adapter: task", "method: lora", "trainable parameters: 256", "backbone: tiny-xlmr, checksum",
                     "head: none", "adapter/layer.0.query.lora_A  float32  [2, 16]"] {
            #expect(result.output.contains(line), "\(line)")
        }
    }
}
