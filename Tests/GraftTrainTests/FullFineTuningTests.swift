import Foundation
import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftTrain

/// Full fine-tuning of the tiny backbone: no adapter, the encoder's weights and a sequence head trained together.
@Suite struct FullFineTuningTests {
    struct Setup {
        let backbone: Backbone
        let classifier: Classifier
        let parameters: [(name: String, parameter: Parameter)]
        let examples: [SequenceExample]
    }

    func setup(wordEmbeddings: Bool = false) throws -> Setup {
        let backbone = try TinyBackbone.make()
        let model = GraftedModel(encoder: backbone.encoder)
        backbone.encoder.setTrainableForFineTuning(wordEmbeddings: wordEmbeddings)
        let classifier = Classifier(backbone: backbone, model: model, kind: .sequence, labels: ["wet", "dry"], seed: 3)
        let texts = ["water mawu a", "ndi wind a"]
        let examples = (0..<8).map { SequenceExample(ids: backbone.tokenizer.encode(texts[$0 % 2], maxLength: nil), label: $0 % 2) }
        let parameters = backbone.encoder.trainableParameters().map { ("backbone.\($0.name)", $0.parameter) }
            + classifier.head.namedParameters().map { ("head.\($0.name)", $0.parameter) }
        return Setup(backbone: backbone, classifier: classifier, parameters: parameters, examples: examples)
    }

    /// A run of `steps` updates; with `killAt`, it throws at that step (after the checkpoints before it).
    func train(_ s: Setup, steps: Int, checkpoint: String? = nil, resume: Bool = false, killAt: Int? = nil) throws -> [Float] {
        var options = TrainingOptions()
        (options.steps, options.learningRate, options.warmupSteps) = (steps, 1e-2, 1)
        options.checkpointEvery = checkpoint == nil ? nil : 2
        let trainer = try Trainer(parameters: s.parameters, options: options, checkpointPath: checkpoint)
        if resume, let checkpoint { try trainer.resume(from: checkpoint) }
        try trainer.run(loss: { step, micro, tape in
            if step == killAt { throw CancellationError() }
            let batch = (0..<4).map { s.examples[(step * 4 + $0) % s.examples.count] }
            let (loss, tokens) = s.classifier.loss(batch, seed: trainer.seed(step: step, micro: micro), tape: tape)
            return (loss, tokens)
        })
        return trainer.history.map(\.loss)
    }

    @Test func everyBackboneWeightGetsItsFiniteDifferenceGradient() throws {
        let s = try setup(wordEmbeddings: true)
        #expect(s.parameters.count == s.backbone.encoder.namedParameters().count + 2)
        let input = EncoderInput(padding: [[0, 5, 6, 7, 9, 2], [0, 8, 11, 2]], padID: 1)
        let head = try #require(s.classifier.head as? SequenceClassificationHead)
        let errors = parameterGradientErrors(s.parameters.map(\.parameter)) { tape in
            let context = s.classifier.model.context(tape: tape)
            return head(s.classifier.model(input, context: context), input: input, context: context)
        }
        for (named, error) in zip(s.parameters, errors) {
            if named.name.hasSuffix("key.bias") {
                // Attention is invariant to the key bias (it shifts every score of a query alike): its
                // gradient is zero, and the relative error compares rounding noise with rounding noise.
                let largest = try #require(named.parameter.grad).scalars.map(abs).max()!
                #expect(largest < 1e-5, "\(named.name): gradient \(largest)")
            } else {
                #expect(error < 1e-2, "\(named.name): relative error \(error)")
            }
        }
    }

    /// Activation checkpointing recomputes layers whose own weights now train.
    @Test func recomputedLayersGiveTheSameGradients() throws {
        let s = try setup(wordEmbeddings: true)
        func gradients(recomputing: Bool) -> (loss: Float, gradients: [Tensor?]) {
            let tape = Tape()
            s.classifier.model.recomputesLayers = recomputing
            let (loss, _) = s.classifier.loss(s.examples, seed: 5, tape: tape)
            tape.backward(loss)
            defer { for (_, parameter) in s.parameters { parameter.zeroGradient() } }
            return (loss.value.scalar, s.parameters.map(\.parameter.grad))
        }
        let kept = gradients(recomputing: false), recomputed = gradients(recomputing: true)
        #expect(kept.loss == recomputed.loss)
        for (named, (a, b)) in zip(s.parameters, zip(kept.gradients, recomputed.gradients)) {
            let a = try #require(a, "\(named.name)"), b = try #require(b, "\(named.name)")
            #expect(a.maxAbsDifference(b) < 1e-6, "\(named.name)")
        }
    }

    @Test func frozenWordEmbeddingsGetNoGradientAndStay() throws {
        let s = try setup()
        let word = s.backbone.encoder.embeddings.word.weight
        #expect(!s.parameters.contains { $0.parameter === word })
        let before = word.value
        _ = try train(s, steps: 3)
        #expect(word.grad == nil && word.value == before)
    }

    @Test func trainingMovesTheBackboneAndLowersTheLoss() throws {
        let s = try setup(wordEmbeddings: true)
        let before = s.backbone.encoder.namedParameters().map(\.parameter.value)
        let losses = try train(s, steps: 12)
        #expect(losses.suffix(3).reduce(0, +) < losses.prefix(3).reduce(0, +))
        let after = s.backbone.encoder.namedParameters().map(\.parameter.value)
        let unchanged = zip(s.backbone.encoder.namedParameters(), zip(before, after)).filter { $1.0 == $1.1 }.map(\.0.name)
        #expect(unchanged.isEmpty, "not trained: \(unchanged)")
    }

    @Test func theSavedModelReloadsAndPredictsTheSame() throws {
        let s = try setup()
        let original = (name: s.backbone.name, checksum: s.backbone.checksum)
        _ = try train(s, steps: 4)
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let saved = try FineTunedModel(trained: s.backbone, head: s.classifier.head,
                                       headConfiguration: .sequenceClassification(labels: s.classifier.labels, pooling: .mean))
        try saved.save(to: path)
        #expect(saved.backbone.checksum != original.checksum)

        let loaded = try FineTunedModel.load(from: path)
        #expect(loaded.startedFrom == original && loaded.backbone.checksum == saved.backbone.checksum)
        #expect(try Backbone.load(from: path).checksum == saved.backbone.checksum)  // a backbone file as any other
        let reloaded = Classifier(backbone: loaded.backbone, model: GraftedModel(encoder: loaded.backbone.encoder), head: loaded.head,
                                  kind: .sequence, labels: s.classifier.labels)
        let ids = s.examples.map(\.ids)
        let context = { (classifier: Classifier) in classifier.model.context() }
        #expect(reloaded.logits(ids, context: context(reloaded)).logits.value == s.classifier.logits(ids, context: context(s.classifier)).logits.value)

        let plain = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: plain) }
        try TinyBackbone.make().save(to: plain)
        #expect(throws: AdapterCheckpointError.self) { try FineTunedModel.load(from: plain) }
    }

    @Test func resumingRepeatsTheUninterruptedRunExactly() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let uninterrupted = try setup()
        let full = try train(uninterrupted, steps: 6)
        #expect(throws: CancellationError.self) { try train(try setup(), steps: 6, checkpoint: path, killAt: 3) }
        let resumed = try setup()
        #expect(try train(resumed, steps: 6, checkpoint: path, resume: true) == full)
        #expect(zip(resumed.parameters, uninterrupted.parameters).allSatisfy { $0.parameter.value == $1.parameter.value })
    }
}
