import Foundation
import GraftAutodiff
import GraftIO
import GraftTensor
import Testing
@testable import GraftNN

/// A tiny random model exported by `Fixtures/make_tiny_encoders.py` (transformers).
struct TinyModel {
    let file: HDF5File
    let configuration: EncoderConfiguration
    let input: EncoderInput

    init(_ name: String) throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "h5"))
        file = try HDF5File(path: url.path, mode: .read)
        configuration = try JSONDecoder().decode(EncoderConfiguration.self, from: Data(try file.attribute(named: "config").utf8))
        let ids = try file.read("input.ids"), mask = try file.read("input.attention_mask")
        input = EncoderInput(ids: ids.scalars.map { Int($0) }, attentionMask: mask.scalars.map { Int($0) },
                             batchSize: ids.shape[0], length: ids.shape[1])
    }

    func encoder(prefix: String) throws -> TransformerEncoder {
        let encoder = TransformerEncoder(configuration: configuration)
        try encoder.loadParameters { try file.read(prefix + $0) }
        return encoder
    }
}

@Suite struct EncoderParity {
    @Test func bertMatchesTransformers() throws {
        let model = try TinyModel("tiny_bert")
        let encoder = try model.encoder(prefix: "bert.")
        let hidden = encoder(model.input, context: .inference())
        let expected = try model.file.read("expected.last_hidden_state")
        #expect(hidden.value.reshaped(expected.shape).maxAbsDifference(expected) < 1e-4)

        var generator = SeededGenerator(seed: 0)
        let head = MaskedLMHead(tiedTo: encoder, generator: &generator)
        try head.loadParameters { try model.file.read("cls.predictions." + $0) }
        let rows = Array(0..<(model.input.batchSize * model.input.length))
        let logits = head(hidden, rows: rows, context: .inference())
        let expectedLogits = try model.file.read("expected.mlm_logits")
        #expect(logits.value.reshaped(expectedLogits.shape).maxAbsDifference(expectedLogits) < 1e-4)
    }

    @Test func xlmRobertaMatchesTransformers() throws {
        let model = try TinyModel("tiny_xlmr")
        #expect(model.configuration.offsetsPositions)
        let encoder = try model.encoder(prefix: "roberta.")
        let hidden = encoder(model.input, context: .inference())
        let expected = try model.file.read("expected.last_hidden_state")
        #expect(hidden.value.reshaped(expected.shape).maxAbsDifference(expected) < 1e-4)
        // Position ids skip the padding index: real tokens start at pad + 1.
        let positions = encoder.embeddings.positionIDs(for: model.input)
        #expect(positions.prefix(model.input.length) == ArraySlice(2..<(2 + model.input.length)))
        #expect(positions.suffix(3) == [1, 1, 1])
    }

    /// A packed batch (each text's real tokens back to back, no padding) gives every
    /// text the hidden states that transformers computes for it in the padded batch,
    /// and that Graft's padded batch gives it; pooling reads both layouts alike.
    @Test(arguments: [("tiny_bert", "bert."), ("tiny_xlmr", "roberta.")])
    func aPackedBatchGivesEachTextItsPaddedRows(name: String, prefix: String) throws {
        let model = try TinyModel(name)
        let encoder = try model.encoder(prefix: prefix)
        let padded = model.input
        let texts = (0..<padded.batchSize).map { example in padded.rows(of: example).filter { padded.attentionMask[$0] == 1 }.map { padded.ids[$0] } }
        #expect(Set(texts.map(\.count)).count > 1, "the fixture has texts of different lengths")
        let packed = EncoderInput(packing: texts)
        let realRows = (0..<padded.batchSize).flatMap { example in padded.rows(of: example).prefix(texts[example].count) }
        let paddedHidden = encoder(padded, context: .inference())
        let packedHidden = encoder(packed, context: .inference())
        let width = model.configuration.hiddenSize
        let expected = try model.file.read("expected.last_hidden_state").reshaped([padded.ids.count, width]).gatherRows(realRows)
        #expect(packedHidden.value.maxAbsDifference(expected) < 1e-4)
        #expect(packedHidden.value.maxAbsDifference(paddedHidden.value.gatherRows(realRows)) < 1e-5)
        #expect(meanPool(packedHidden, input: packed).value.maxAbsDifference(meanPool(paddedHidden, input: padded).value) < 1e-5)
        #expect(firstTokens(packedHidden, input: packed).value.maxAbsDifference(firstTokens(paddedHidden, input: padded).value) < 1e-5)
    }

    @Test func missingOrMisshapedWeightsAreNamed() throws {
        let model = try TinyModel("tiny_bert")
        let encoder = TransformerEncoder(configuration: model.configuration)
        #expect(throws: ParameterLoadingError.missing(name: "embeddings.word_embeddings.weight")) {
            try encoder.loadParameters { _ in nil }
        }
        #expect(throws: ParameterLoadingError.shapeMismatch(
            name: "embeddings.word_embeddings.weight", expected: [61, 24], found: [2, 2])) {
            try encoder.loadParameters { _ in Tensor(zeros: [2, 2]) }
        }
    }

    @Test func parameterNamesFollowHuggingFace() throws {
        let model = try TinyModel("tiny_bert")
        let names = TransformerEncoder(configuration: model.configuration).namedParameters().map(\.name)
        #expect(names.count == 5 + 16 * 2)
        #expect(names.contains("encoder.layer.1.attention.self.query.weight"))
        #expect(names.contains("encoder.layer.0.intermediate.dense.bias"))
        #expect(names.contains("embeddings.LayerNorm.weight"))
    }

    @Test func recomputedLayersGiveTheSameLossAndGradients() throws {
        let model = try TinyModel("tiny_bert")
        var configuration = model.configuration
        (configuration.hiddenDropout, configuration.attentionDropout) = (0.2, 0.2)
        let encoder = TransformerEncoder(configuration: configuration)
        try encoder.loadParameters { try model.file.read("bert." + $0) }
        encoder.setTrainable(true)
        func run(recomputing: Bool) -> (loss: Float, gradients: [Tensor]) {
            let tape = Tape()
            let context = ForwardContext(tape: tape, isTraining: true, seed: 11)
            context.recomputesLayers = recomputing
            let hidden = encoder(model.input, context: context)
            let loss = (hidden * hidden).mean()
            tape.backward(loss)
            let gradients = encoder.namedParameters().map { $0.parameter.grad! }
            for (_, parameter) in encoder.namedParameters() { parameter.zeroGradient() }
            return (loss.value.scalar, gradients)
        }
        let plain = run(recomputing: false), recomputed = run(recomputing: true)
        #expect(plain.loss == recomputed.loss)
        for (a, b) in zip(plain.gradients, recomputed.gradients) { #expect(a.maxAbsDifference(b) <= 1e-6 * max(1, a.maxAbsDifference(Tensor(zeros: a.shape)))) }
        // Dropout is active: another seed gives another loss.
        let tape = Tape()
        let other = encoder(model.input, context: ForwardContext(tape: tape, isTraining: true, seed: 12))
        #expect((other * other).mean().value.scalar != plain.loss)
    }

    @Test func encoderLayerGradientsMatchFiniteDifferences() throws {
        let model = try TinyModel("tiny_bert")
        let encoder = try model.encoder(prefix: "bert.")
        let layer = encoder.layers.elements[0]
        let (batch, length) = (model.input.batchSize, model.input.length)
        var generator = SeededGenerator(seed: 1)
        let x = Tensor.normal(shape: [batch * length, 24], generator: &generator)
        // Frozen weights (no tape in the context) still pass the input gradient through.
        let errors = GradientCheck.relativeErrors(inputs: [x], epsilon: 3e-3) { v in
            layer(v[0], lengths: model.input.exampleLengths, attentionMask: model.input.attentionMask, context: .inference())
        }
        #expect(errors[0] < 1e-3)
    }
}
