import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing

/// A Hugging Face directory among this target's fixtures.
private func fixture(_ name: String) -> String {
    Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name).path
}

/// Pretrained masked-LM heads come with the checkpoints that ship them (`make_mlm_head_fixtures.py`).
@Suite struct MaskedLMHeadImport {
    struct Expected: Decodable {
        let ids: [[Int]]
        let attentionMask: [[Int]]
        let logits: [[[Float]]]
        enum CodingKeys: String, CodingKey { case ids, attentionMask = "attention_mask", logits }
    }

    /// The imported head on the imported encoder gives transformers' logits at every real token,
    /// and survives a backbone file.
    @Test func bertHeadGivesTransformersLogits() throws {
        let directory = fixture("mlm_bert")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/expected_logits.json")))
        let backbone = try Backbone.importModel(from: directory)
        let head = try #require(backbone.maskedLMHead)
        func logits(_ backbone: Backbone, _ head: MaskedLMHead) -> Tensor {
            let input = EncoderInput(ids: expected.ids.flatMap { $0 }, attentionMask: expected.attentionMask.flatMap { $0 },
                                     batchSize: expected.ids.count, length: expected.ids[0].count)
            let context = ForwardContext.inference()
            return head(backbone.encoder(input, context: context), rows: Array(0..<(input.batchSize * input.length)), context: context).value
        }
        let found = logits(backbone, head)
        let (length, vocabulary) = (expected.ids[0].count, found.shape[1])
        for (example, mask) in expected.attentionMask.enumerated() {
            for position in mask.indices where mask[position] == 1 {
                let row = Array(found.scalars[((example * length + position) * vocabulary)..<((example * length + position + 1) * vocabulary)])
                let difference = zip(row, expected.logits[example][position]).map { abs($0 - $1) }.max()!
                #expect(difference < 1e-4, "example \(example), position \(position): \(difference)")
            }
        }
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try backbone.save(to: path)
        let reloaded = try Backbone.load(from: path)
        #expect(logits(reloaded, try #require(reloaded.maskedLMHead)) == found)
        #expect(reloaded.summary.contains("masked-LM head: pretrained"))
        #expect(reloaded.summary.contains("source: Hugging Face directory") && reloaded.summary.contains("mlm_bert (bert, model.safetensors)"),
                "\(reloaded.summary)")
    }

    /// A decoder with a table of its own (XLM-R, tie_word_embeddings false) is kept as the head's, frozen,
    /// and gives transformers' logits too, also after a backbone file.
    @Test func anUntiedDecoderGivesTransformersLogits() throws {
        let directory = fixture("mlm_xlmr_untied")
        let expected = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/expected_logits.json")))
        let backbone = try Backbone.importModel(from: directory)
        let head = try #require(backbone.maskedLMHead)
        let untied = try #require(head.untiedDecoder(of: backbone.encoder))
        #expect(untied != backbone.encoder.embeddings.word.weight.value && !head.decoderWeight.isTrainable)
        func logits(_ backbone: Backbone) throws -> Tensor {
            let input = EncoderInput(ids: expected.ids.flatMap { $0 }, attentionMask: expected.attentionMask.flatMap { $0 },
                                     batchSize: expected.ids.count, length: expected.ids[0].count)
            let context = ForwardContext.inference()
            let head = try #require(backbone.maskedLMHead)
            let hidden = backbone.encoder(input, context: context)
            return head(hidden, rows: Array(0..<(input.batchSize * input.length)), context: context).value
        }
        let found = try logits(backbone)
        let (length, vocabulary) = (expected.ids[0].count, found.shape[1])
        for (example, mask) in expected.attentionMask.enumerated() {
            for position in mask.indices where mask[position] == 1 {
                let start = (example * length + position) * vocabulary
                let difference = zip(found.scalars[start..<(start + vocabulary)], expected.logits[example][position]).map { abs($0 - $1) }.max()!
                #expect(difference < 1e-4, "example \(example), position \(position): \(difference)")
            }
        }
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try backbone.save(to: path)
        let reloaded = try Backbone.load(from: path)
        #expect(try logits(reloaded) == found && reloaded.summary.contains("with a decoder of its own"))
    }

    /// A checkpoint without a head (an encoder model) imports without one.
    @Test func aCheckpointWithoutAHeadHasNone() throws {
        #expect(try TinyBackbone.make().maskedLMHead == nil)
    }
}
