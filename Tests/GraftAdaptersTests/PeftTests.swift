import Foundation
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

/// The peft fixture of `Fixtures/make_peft_fixture.py`, and exports back to peft.
@Suite struct Peft {
    let backbone: Backbone
    let input: EncoderInput
    let expected: Tensor

    init() throws {
        backbone = try Backbone.importHuggingFace(directory: fixture("peft_base"))
        let file = try HDF5File(path: fixture("peft_expected.h5"), mode: .read)
        let ids = try file.read("input.ids"), mask = try file.read("input.attention_mask")
        input = EncoderInput(ids: ids.scalars.map { Int($0) }, attentionMask: mask.scalars.map { Int($0) },
                             batchSize: ids.shape[0], length: ids.shape[1])
        expected = try file.read("expected")
    }

    /// Max |difference| to `expected` over real tokens.
    func difference(_ output: Tensor, _ expected: Tensor) -> Float {
        let expected = expected.reshaped(output.shape)
        var worst: Float = 0
        for row in 0..<output.shape[0] where input.attentionMask[row] == 1 {
            for j in 0..<output.shape[1] { worst = max(worst, abs(output[row, j] - expected[row, j])) }
        }
        return worst
    }

    func run(_ adapter: any Adapter) throws -> Tensor {
        let model = try graft(backbone, [("a", adapter)])
        try model.activate(.single("a"))
        return model(input, context: model.context()).value
    }

    @Test func peftDirectoryLoadsAndMatchesPeft() throws {
        let checkpoint = try AdapterCheckpoint.load(from: fixture("peft_lora"), backbone: backbone)
        #expect(checkpoint.name == "peft_lora" && checkpoint.backboneChecksum == backbone.checksum)
        #expect(checkpoint.configuration == AdapterConfiguration(LoRAConfiguration(rank: 4, alpha: 16, dropout: 0.1, targets: [.query, .value, .ffnIn],
                                                                     leaveOut: [0])))
        #expect(difference(try run(checkpoint.adapter), expected) < 1e-5)
    }

    /// Swift's export, read back: the same tensors under peft's names, and a
    /// `target_modules` pattern that does not confuse `output.dense` with `attention.output.dense`.
    @Test func exportReadsBackIdentically() throws {
        let lora = LoRAAdapter(LoRAConfiguration(rank: 3, alpha: 5, targets: [.key, .ffnOut], rankStabilized: true),
                               model: backbone.configuration, seed: 0)
        randomize(lora, seed: 1, scale: 0.1)
        let directory = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try PeftFormat.write(lora, baseModel: "tiny-bert", to: directory)
        let weights = try SafetensorsFile(contentsOf: directory + "/adapter_model.safetensors")
        #expect(weights.metadata == ["format": "pt"])
        #expect(weights.tensorNames.contains("base_model.model.encoder.layer.1.output.dense.lora_B.weight"))
        #expect(try weights.tensor(named: "base_model.model.encoder.layer.0.attention.self.key.lora_A.weight")
            == lora.updates[0]![.key]!.a.value)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/adapter_config.json"))) as? [String: Any]
        #expect(json?["target_modules"] as? String == #".*encoder\.layer\.(0|1)\.(attention\.self\.key|output\.dense)"#)
        #expect(json?["use_rslora"] as? Bool == true && json?["base_model_name_or_path"] as? String == "tiny-bert")

        let loaded = try AdapterCheckpoint.load(from: directory, backbone: backbone)
        #expect(loaded.configuration == AdapterConfiguration(lora.configuration))
        #expect(try run(loaded.adapter) == (try run(lora)))
        try keepForPythonCheck(lora, expected: try run(lora))
    }

    /// With `GRAFT_PEFT_EXPORT_DIR` set, writes a LoRA and a de-sharded MoS export
    /// there, each with `graft_expected.safetensors` (the input and Graft's output),
    /// for `Fixtures/check_peft_export.py`.
    func keepForPythonCheck(_ lora: LoRAAdapter, expected: Tensor) throws {
        guard let root = ProcessInfo.processInfo.environment["GRAFT_PEFT_EXPORT_DIR"] else { return }
        let mos = try MoSAdapter(MoSConfiguration(rank: 4, validRank: 2, alpha: 6, targets: [.value, .attentionOutput, .ffnIn]),
                                 model: backbone.configuration, seed: 0)
        randomize(mos, seed: 2, scale: 0.1)
        for (name, adapter, output) in [("lora", lora, expected), ("mos", mos.asLoRA(), try run(mos))] {
            let directory = root + "/" + name
            try PeftFormat.write(adapter, baseModel: "peft_base", to: directory)
            try SafetensorsFile.write([
                "input_ids": Tensor(shape: [input.batchSize, input.length], scalars: input.ids.map(Float.init)),
                "attention_mask": Tensor(shape: [input.batchSize, input.length], scalars: input.attentionMask.map(Float.init)),
                "last_hidden_state": output.reshaped([input.batchSize, input.length, -1]),
            ], to: directory + "/graft_expected.safetensors")
        }
    }

    @Test func unsupportedSettingsAndMismatchedShapesAreErrors() throws {
        let directory = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: fixture("peft_lora"), toPath: directory)
        // The fixture is for hidden size 32; the tiny XLM-R has 16.
        let error = #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: directory, backbone: TinyBackbone.make()) }
        #expect(error?.description.contains("has shape [4, 32]; expected [4, 16]") == true)

        let path = directory + "/adapter_config.json"
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        json["use_dora"] = true
        json["modules_to_save"] = ["classifier"]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        #expect(throws: AdapterCheckpointError.invalid(source: directory,
                                                       detail: "unsupported peft settings: modules_to_save [\"classifier\"]; use_dora true")) {
            try AdapterCheckpoint.load(from: directory, backbone: backbone)
        }
        // Unconverted PiSSA / OLoRA, activated LoRA and settings Graft does not know are refused, naming them;
        // a setting Graft does not know is accepted at its off value.
        for (key, value, message) in [("init_lora_weights", "pissa" as Any, "init_lora_weights \"pissa\" (it changes the base weights"),
                                      ("init_lora_weights", "olora", "init_lora_weights \"olora\""),
                                      ("alora_invocation_tokens", [5, 6], "alora_invocation_tokens (activated LoRA"),
                                      ("future_config", ["k": 1], "future_config {\"k\":1}")] {
            var settings = json
            (settings["use_dora"], settings["modules_to_save"], settings[key]) = (false, NSNull(), value)
            try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: directory, backbone: backbone) }
            #expect(error?.description.contains(message) == true, "\(String(describing: error))")
        }
        json["use_dora"] = false
        json["modules_to_save"] = NSNull()
        json["future_config"] = NSNull()
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        _ = try AdapterCheckpoint.load(from: directory, backbone: backbone)
    }

    @Test func safetensorsWriterRoundTripsAndAlignsTheData() throws {
        let path = TinyBackbone.temporaryPath(".safetensors")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tensors = ["b": Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, .infinity, -0.25]), "a/x": Tensor(scalar: 7),
                       "empty": Tensor(zeros: [0, 4])]
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: path)
        let file = try SafetensorsFile(contentsOf: path)
        #expect(file.tensorNames == ["a/x", "b", "empty"] && file.metadata == ["format": "pt"])
        for (name, tensor) in tensors { #expect(try file.tensor(named: name) == tensor) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0 && data.count == 8 + Int(headerLength) + 4 * 7)
        #expect(throws: SafetensorsError.self) { try SafetensorsFile.write(["__metadata__": Tensor(scalar: 1)], to: path) }
    }
}
