import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import Testing
@testable import GraftAdapters

/// Adapters saved by AdapterHub `adapters` load into Graft (`make_adapterhub_fixture.py`).
@Suite struct AdapterHubImport {
    struct Expected: Decodable {
        let ids: [[Int]]
        let attentionMask: [[Int]]
        let lastHiddenState: [[[Float]]]
        enum CodingKeys: String, CodingKey { case ids, attentionMask = "attention_mask", lastHiddenState = "last_hidden_state" }
    }

    /// A MAD-X language adapter (seq_bn_inv) saved by `save_adapter` computes what AdapterHub computes with it.
    @Test func aSavedLanguageAdapterGivesAdapterHubsOutput() throws {
        let backbone = try Backbone.importModel(from: fixture("adapterhub_bert"))
        let checkpoint = try AdapterCheckpoint.load(from: fixture("adapterhub_seq_bn_inv"), backbone: backbone)
        #expect(checkpoint.configuration.method == "seq_bn_inv")
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("lang", checkpoint.adapter)
        try model.activate(.single("lang"))
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("adapterhub_expected.json"))))
        let input = EncoderInput(ids: expected.ids.flatMap { $0 }, attentionMask: expected.attentionMask.flatMap { $0 },
                                 batchSize: expected.ids.count, length: expected.ids[0].count)
        let found = model(input, context: model.context()).value
        let hidden = found.shape[1]
        var largest: Float = 0
        for (example, mask) in expected.attentionMask.enumerated() {
            for position in mask.indices where mask[position] == 1 {
                let row = (example * expected.ids[0].count + position) * hidden
                for (a, b) in zip(found.scalars[row..<(row + hidden)], expected.lastHiddenState[example][position]) { largest = max(largest, abs(a - b)) }
            }
        }
        #expect(largest < 1e-5, "largest difference \(largest)")
    }

    /// Settings Graft has no form for are refused, naming them.
    @Test func unsupportedSettingsAreNamed() throws {
        let directory = NSTemporaryDirectory() + "graft-adapterhub-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: fixture("adapterhub_seq_bn_inv"), toPath: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/adapter_config.json"
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        let model = try Backbone.importModel(from: fixture("adapterhub_bert")).configuration
        for (key, value, message) in [("use_gating", true as Any, "use_gating"), ("non_linearity", "leakyrelu", "non_linearity"),
                                      ("mh_adapter", true, "placement"), ("inv_adapter", "glow", "inv_adapter")] {
            var json = original, config = original["config"] as! [String: Any]
            config[key] = value
            json["config"] = config
            try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: AdapterCheckpointError.self) { try AdapterHubFormat.read(directory: directory, model: model) }
            #expect(error?.description.contains(message) == true, "\(key): \(String(describing: error))")
        }
    }
}

/// Graft's bottleneck adapters written in AdapterHub's format (`Tests/GraftAdaptersTests/Fixtures/check_adapterhub_export.py`
/// checks that AdapterHub loads them and computes the same).
@Suite struct AdapterHubExport {
    @Test(arguments: ["seq_bn_inv", "double_seq_bn", "par_bn"])
    func writtenAdaptersReadBackExactly(method: String) throws {
        let backbone = try Backbone.importModel(from: fixture("adapterhub_bert"))
        var settings = try #require(try AdapterMethods.defaults(method) as? BottleneckConfiguration)
        settings.reductionFactorPerLayer = ["1": 4]
        let adapter = BottleneckAdapter(settings, model: backbone.configuration, seed: 3)
        var generator = SeededGenerator(seed: 4)
        for (_, parameter) in adapter.namedParameters() {
            parameter.value = .normal(shape: parameter.value.shape, standardDeviation: 0.1, generator: &generator)
        }
        let directory = NSTemporaryDirectory() + "graft-adapterhub-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try AdapterHubFormat.write(adapter, name: "lang", model: backbone.configuration, to: directory)
        let read = try AdapterHubFormat.read(directory: directory, model: backbone.configuration)
        #expect(read.configuration == adapter.configuration)
        let values = { (module: BottleneckAdapter) in module.namedParameters().map { "\($0.name) \($0.parameter.value.scalars)" } }
        #expect(values(read) == values(adapter))
    }
}
