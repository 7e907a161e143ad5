import Foundation
import GraftAutodiff
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftTrain

@Suite struct OutputVocabularyTests {
    @Test func idsAreSortedAndTargetsMapToTheirRestrictedIndex() throws {
        let vocabulary = OutputVocabulary(ids: [9, 2, 5, 9], fullSize: 12)
        #expect(vocabulary.ids == [2, 5, 9] && vocabulary.count == 3)
        #expect(vocabulary.contains(5) && !vocabulary.contains(4) && !vocabulary.contains(12))
        #expect(vocabulary.restrict([9, Variable.ignoreIndex, 2, 5]) == [2, Variable.ignoreIndex, 0, 1])

        let tokenizer = try TinyBackbone.tokenizer()
        let corpus = OutputVocabulary(covering: [[0, 4, 5, 2], [0, 7, 2]], tokenizer: tokenizer, fullSize: 21)
        // The corpus's ids, the special ids (<s>, <pad>, </s>) and <mask>.
        #expect(corpus.ids == [0, 1, 2, 4, 5, 7, tokenizer.maskID])
    }

    @Test func samplesFromOutsideAreDistinctAndSorted() {
        let vocabulary = OutputVocabulary(ids: [0, 3, 4, 9], fullSize: 40)
        #expect(vocabulary.outsideCount == 36)
        var generator = SeededGenerator(seed: 1)
        for count in [1, 5, 35] {
            let sample = vocabulary.sampleOutside(count, generator: &generator)
            #expect(sample.count == count && sample == Array(Set(sample)).sorted())
            #expect(sample.allSatisfy { $0 >= 0 && $0 < 40 && !vocabulary.contains($0) })
        }
        #expect(vocabulary.sampleOutside(36, generator: &generator) == (0..<40).filter { !vocabulary.contains($0) })
        var again = SeededGenerator(seed: 2), same = SeededGenerator(seed: 2)
        #expect(vocabulary.sampleOutside(7, generator: &again) == vocabulary.sampleOutside(7, generator: &same))
    }

    @Test func aTargetOutsideTheVocabularyStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            _ = OutputVocabulary(ids: [1, 2], fullSize: 4).restrict([3])
        }
        // A masked token of a batch that the training vocabulary does not hold.
        await #expect(processExitsWith: .failure) {
            let (task, _, texts) = try tinyMaskedLM()
            task.trainingVocabulary = OutputVocabulary(ids: task.corruption.specialIDs, fullSize: 21)
            _ = task.loss(texts, seed: 1, tape: nil)
        }
    }

    /// The restricted training loss, against the full decoder's logits at the
    /// vocabulary's columns (and the sampled outside ones, plus `log(outside / sampled)`),
    /// log-softmaxed by hand in `Double`.
    @Test(arguments: [0, 6])
    func restrictedLossIsTheLogSoftmaxOverTheRestrictedRows(negativeSamples: Int) throws {
        let (task, _, texts) = try tinyMaskedLM()
        randomize(task.head, seed: 5)
        let vocabulary = OutputVocabulary(covering: texts, tokenizer: task.backbone.tokenizer, fullSize: 21)
        #expect(vocabulary.count < 21)
        task.trainingVocabulary = vocabulary
        task.negativeSamples = negativeSamples
        let seed: UInt64 = 11
        let loss = task.loss(texts, seed: seed, tape: nil).loss.value.scalar

        let (input, rows, targets) = task.maskedBatch(texts, seed: seed)
        let negatives = task.sampledNegatives(vocabulary, seed: seed)
        #expect(!rows.isEmpty && negatives.count == negativeSamples)
        let correction = Foundation.log(Double(vocabulary.outsideCount) / Double(max(negativeSamples, 1)))
        let context = task.model.context(isTraining: true, seed: seed)
        let logits = task.head(task.model(input, context: context), rows: rows, context: context).value
        var total = 0.0
        for (row, target) in targets.enumerated() {
            let restricted = vocabulary.ids.map { Double(logits.scalars[row * 21 + $0]) }
                + negatives.map { Double(logits.scalars[row * 21 + $0]) + correction }
            let top = restricted.max()!
            let logSumExp = top + Foundation.log(restricted.map { Foundation.exp($0 - top) }.reduce(0, +))
            total += logSumExp - Double(logits.scalars[row * 21 + target])
        }
        #expect(abs(Double(loss) - total / Double(targets.count)) < 1e-5)
        // Over the full vocabulary the same batch scores differently.
        task.trainingVocabulary = nil
        #expect(abs(task.loss(texts, seed: seed, tape: nil).loss.value.scalar - loss) > 1e-3)
    }

    @Test(arguments: [0, 6])
    func decoderBiasAndAdapterGradientsMatchFiniteDifferences(negativeSamples: Int) throws {
        let (task, _, texts) = try tinyMaskedLM()
        randomize(try #require(task.model.adapters["lang"]), seed: 6, scale: 0.2)
        randomize(task.head, seed: 7, scale: 0.2)
        let vocabulary = OutputVocabulary(covering: texts, tokenizer: task.backbone.tokenizer, fullSize: 21)
        task.trainingVocabulary = vocabulary
        task.negativeSamples = negativeSamples
        let scored = Set(vocabulary.ids + task.sampledNegatives(vocabulary, seed: 4))
        let bias = task.head.decoderBias
        let parameters = [bias] + task.model.namedParameters().map(\.parameter)
        let errors = parameterGradientErrors(parameters, epsilon: 1e-2) { tape in
            task.loss(texts, seed: 4, tape: tape).loss
        }
        for (parameter, error) in zip(parameters, errors) {
            #expect(error < 3e-3, "\(parameter.value.shape): relative error \(error)")
        }
        // The bias gradient reaches the scored entries only (the vocabulary's and the sampled ones).
        let gradient = try #require(bias.grad)
        for id in 0..<21 where !scored.contains(id) { #expect(gradient.scalars[id] == 0) }
        #expect(scored.allSatisfy { gradient.scalars[$0] != 0 })
    }

    @Test func evaluationStaysOverTheFullVocabulary() throws {
        let (task, _, texts) = try tinyMaskedLM()
        randomize(task.head, seed: 8)
        let heldOut = Array(texts.prefix(3))
        let before = task.pseudoPerplexity(heldOut)
        let lossBefore = task.loss(heldOut, seed: 2, tape: nil, training: false).loss.value
        // A vocabulary that leaves out tokens of the held-out texts: evaluation never consults it.
        task.trainingVocabulary = OutputVocabulary(covering: [texts[4]], tokenizer: task.backbone.tokenizer, fullSize: 21)
        #expect(task.pseudoPerplexity(heldOut) == before)
        #expect(task.loss(heldOut, seed: 2, tape: nil, training: false).loss.value == lossBefore)
    }

    @Test func coverageCountsUnknownTextTokens() throws {
        let tokenizer = try TinyBackbone.tokenizer()
        let texts = ["mawu zz a", "ndi"].map { tokenizer.encode($0, maxLength: nil) }
        let coverage = TokenizerCoverage(texts: texts, tokenizer: tokenizer)
        let textTokens = texts.joined().filter { !tokenizer.specialIDs.contains($0) }
        #expect(coverage.tokens == textTokens.count)
        #expect(coverage.unknown == textTokens.filter { $0 == tokenizer.unknownID }.count && coverage.unknown > 0)
        #expect(abs(coverage.unknownFraction - Double(coverage.unknown) / Double(coverage.tokens)) < 1e-12)
    }
}
