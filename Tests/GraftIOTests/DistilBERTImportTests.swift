import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing

/// DistilBERT checkpoints import as the BERT encoders they are (`make_distilbert_fixture.py`).
@Suite struct DistilBERTImport {
    struct Expected: Decodable {
        let ids: [[Int]]
        let attentionMask: [[Int]]
        let lastHiddenState: [[[Float]]]
        let logits: [[[Float]]]
        enum CodingKeys: String, CodingKey { case ids, attentionMask = "attention_mask", lastHiddenState = "last_hidden_state", logits }
    }

    func fixture(_ name: String) -> String {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name).path
    }

    /// The largest difference between `found` (`[rows, width]`) and `expected` at the real tokens.
    func largestDifference(_ found: Tensor, _ expected: [[[Float]]], mask: [[Int]]) -> Float {
        let (length, width) = (mask[0].count, found.shape[1])
        var largest: Float = 0
        for (example, row) in mask.enumerated() {
            for position in row.indices where row[position] == 1 {
                let start = (example * length + position) * width
                for (a, b) in zip(found.scalars[start..<(start + width)], expected[example][position]) { largest = max(largest, abs(a - b)) }
            }
        }
        return largest
    }

    @Test func hiddenStatesAndMaskedLMLogitsMatchTransformers() throws {
        let directory = fixture("distilbert")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/expected.json")))
        let backbone = try Backbone.importModel(from: directory)
        #expect(backbone.configuration.modelType == "bert" && backbone.configuration.typeVocabularySize == 1)
        let input = EncoderInput(ids: expected.ids.flatMap { $0 }, attentionMask: expected.attentionMask.flatMap { $0 },
                                 batchSize: expected.ids.count, length: expected.ids[0].count)
        let context = ForwardContext.inference()
        let hidden = backbone.encoder(input, context: context)
        #expect(largestDifference(hidden.value, expected.lastHiddenState, mask: expected.attentionMask) < 1e-4)
        let head = try #require(backbone.maskedLMHead)
        let logits = head(hidden, rows: Array(0..<(input.batchSize * input.length)), context: context).value
        #expect(largestDifference(logits, expected.logits, mask: expected.attentionMask) < 1e-4)
        // Exported, it is a BERT model that imports back unchanged.
        let exported = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: exported) }
        try backbone.exportHuggingFace(to: exported)
        #expect(try Backbone.importModel(from: exported).checksum == backbone.checksum)
    }
}
