import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftTrain

@Suite struct UniPTClassifierTests {
    /// Two classes told apart by their first word: the Trainer fits them through the side network
    /// and the head while the backbone's weights stay as they were.
    @Test func trainingFitsTheSideNetworkAndLeavesTheBackbone() throws {
        let backbone = try TinyBackbone.make()
        let before = backbone.encoder.namedParameters().map(\.parameter.value)
        let classifier = try UniPTClassifier(backbone: backbone, configuration: UniPTConfiguration(), labels: ["mawu", "water"], seed: 0)
        let examples = (0..<8).map { i in
            SequenceExample(ids: backbone.tokenizer.encode(i % 2 == 0 ? "mawu a ndi" : "water a ndi", maxLength: nil), label: i % 2)
        }
        var options = TrainingOptions()
        (options.steps, options.learningRate) = (30, 1e-2)
        let trainer = try Trainer(parameters: classifier.trainableParameters, options: options)
        try trainer.run(loss: { step, _, tape in
            let (loss, tokens) = classifier.loss(examples, seed: UInt64(step), tape: tape)
            return (loss, tokens)
        })
        #expect(trainer.history.last!.loss < 0.5 * trainer.history.first!.loss)
        #expect(classifier.evaluate(examples).accuracy == 1)
        #expect(backbone.encoder.namedParameters().map(\.parameter.value) == before)
        #expect(classifier.trainableParameters.allSatisfy { $0.name.hasPrefix("side.") || $0.name.hasPrefix("head.") })
    }
}
