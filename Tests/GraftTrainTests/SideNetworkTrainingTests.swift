import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftTrain

@Suite struct SideNetworkTraining {
    /// Two classes told apart by their first word: the Trainer fits them through a UniPT side network,
    /// registered and activated like any adapter, while the backbone's weights stay as they were and
    /// no gradient reaches them.
    @Test func trainingFitsTheSideNetworkAndLeavesTheBackbone() throws {
        let backbone = try TinyBackbone.make()
        let before = backbone.encoder.namedParameters().map(\.parameter.value)
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("task", AdapterConfiguration(method: "unipt").makeAdapter(model: backbone.configuration, seed: 0))
        try model.activate(.single("task"))
        let classifier = Classifier(backbone: backbone, model: model, kind: .sequence, labels: ["mawu", "water"], pooling: .first, seed: 1)
        let examples = (0..<8).map { i in
            SequenceExample(ids: backbone.tokenizer.encode(i % 2 == 0 ? "mawu a ndi" : "water a ndi", maxLength: nil), label: i % 2)
        }
        var options = TrainingOptions()
        (options.steps, options.learningRate) = (30, 1e-2)
        let parameters = model.namedParameters() + classifier.head.namedParameters().map { ("head.\($0.name)", $0.parameter) }
        let trainer = try Trainer(parameters: parameters, options: options)
        try trainer.run(loss: { step, _, tape in
            let (loss, tokens) = classifier.loss(examples, seed: UInt64(step), tape: tape)
            return (loss, tokens)
        })
        #expect(trainer.history.last!.loss < 0.5 * trainer.history.first!.loss)
        #expect(classifier.evaluate(examples).accuracy == 1)
        #expect(backbone.encoder.namedParameters().map(\.parameter.value) == before)
        #expect(backbone.encoder.namedParameters().allSatisfy { $0.parameter.grad == nil })
    }
}
