import Foundation
import GraftAdapters
import GraftAutodiff
import GraftData
import GraftNN
import GraftTensor
import GraftTestSupport
import GraftText
import Testing
@testable import GraftTrain

/// scikit-learn's solutions of the same problems (Fixtures/make_logistic_regression.py).
private struct LogisticRegressionFixture: Decodable {
    struct Case: Decodable { let l2: Float, balanced: Bool, weight: [[Float]], bias: [Float] }
    let features: [[Float]], labels: [Int], cases: [Case]

    static func load() throws -> Self {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/logistic_regression", withExtension: "json"))
        return try JSONDecoder().decode(Self.self, from: Data(contentsOf: url))
    }
}

@Suite struct LinearProbeTests {
    @Test func logisticRegressionMatchesScikitLearn() throws {
        let fixture = try LogisticRegressionFixture.load()
        let features = Tensor(shape: [fixture.labels.count, fixture.features[0].count], scalars: fixture.features.flatMap { $0 })
        for reference in fixture.cases {
            let weights = reference.balanced ? try balancedClassWeights(labels: fixture.labels, classCount: 3) : nil
            let probe = LogisticRegression.fit(features: features, labels: fixture.labels, classCount: 3,
                                               classWeights: weights, l2: reference.l2)
            #expect(probe.converged)
            // scikit-learn's multinomial solution is defined up to a constant per feature
            // and for the intercepts; the penalty fixes the weights, not the intercepts' sum.
            let expected = reference.weight.flatMap { $0 }
            let largest = expected.map(abs).max()!
            for (got, want) in zip(probe.weight.scalars, expected) { #expect(abs(got - want) < 2e-3 * max(1, largest)) }
            let meanBias = probe.bias.scalars.reduce(0, +) / 3, meanReference = reference.bias.reduce(0, +) / 3
            for (got, want) in zip(probe.bias.scalars, reference.bias) {
                #expect(abs((got - meanBias) - (want - meanReference)) < 2e-3 * max(1, largest))
            }
        }
    }

    @Test func balancedWeightsEqualiseClassesAndRejectAnEmptyClass() throws {
        let weights = try balancedClassWeights(labels: [0, 0, 0, 1], classCount: 2)
        #expect(weights == [4 / 6, 2])  // n / (k n_c)
        #expect(throws: TrainingError.self) { try balancedClassWeights(labels: [0, 0], classCount: 2, names: ["wet", "dry"]) }
        do {
            _ = try balancedClassWeights(labels: [0, 0], classCount: 2, names: ["wet", "dry"])
        } catch {
            #expect("\(error)".contains("class dry has no training examples"))
        }
    }
}

@Suite struct ModelSelectionTests {
    /// One parameter driven by a loss pulling it to 1; the "dev score" peaks at 0.5.
    func run(options: TrainingOptions, loss: @escaping (Int) -> Float? = { _ in nil }) throws -> (Trainer, Parameter, [Double]) {
        let parameter = Parameter(Tensor(shape: [1], scalars: [0]))
        let trainer = try Trainer(parameters: [("p", parameter)], options: options)
        var scores: [Double] = []
        try trainer.run(
            loss: { step, _, tape in
                let p = tape.variable(parameter)
                let value = ((p - Variable(Tensor(shape: [1], scalars: [1]))) * (p - Variable(Tensor(shape: [1], scalars: [1])))).sum()
                if let poison = loss(step) { return (value * poison, 1) }
                return (value, 1)
            },
            evaluate: { _ in
                let score = -Double(abs(parameter.value.scalars[0] - 0.5))
                scores.append(score)
                return score
            })
        return (trainer, parameter, scores)
    }

    @Test func theBestEvaluationsParametersAreKept() throws {
        var options = TrainingOptions()
        (options.steps, options.learningRate, options.evaluateEvery, options.restoresBest) = (40, 0.05, 1, true)
        let (trainer, parameter, scores) = try run(options: options)
        #expect(scores.count == 41)  // before training and after every step
        let best = try #require(trainer.bestStep)
        #expect(best > 0 && best < 40)
        #expect(abs(-Double(abs(parameter.value.scalars[0] - 0.5)) - scores.max()!) < 1e-12)
        #expect(trainer.summary.contains("after step \(best) of 40"))
    }

    @Test func withoutRestoringTheLastParametersStay() throws {
        var options = TrainingOptions()
        (options.steps, options.learningRate, options.evaluateEvery) = (40, 0.05, 1)
        let (trainer, parameter, scores) = try run(options: options)
        #expect(scores.count == 40)
        #expect(parameter.value.scalars[0] > 0.8)
        #expect(trainer.bestStep != nil)
    }

    @Test func aDivergingRunStopsWithTheBestParameters() throws {
        var options = TrainingOptions()
        (options.steps, options.learningRate, options.evaluateEvery, options.restoresBest) = (40, 0.05, 1, true)
        let (trainer, parameter, _) = try run(options: options, loss: { $0 == 12 ? .nan : nil })
        #expect(trainer.divergedStep == 13)
        #expect(trainer.step == 12)
        #expect(parameter.value.scalars[0].isFinite)
        #expect(trainer.summary.contains("NaN or infinite at step 13"))
        // Without a kept best, a diverging run still throws.
        options.restoresBest = false
        #expect(throws: TrainingError.self) { try run(options: options, loss: { $0 == 12 ? .nan : nil }) }
    }

    @Test func epochsAndWarmUpFractionSizeTheRun() throws {
        var options = TrainingOptions()
        (options.epochs, options.warmupFraction, options.gradientAccumulation) = (2.5, 0.1, 2)
        let sized = try options.sized(batchesPerEpoch: 15)
        #expect(sized.steps == 19)  // ceil(2.5 * 15 / 2)
        #expect(sized.warmupSteps == 2)
        options.epochs = 0
        #expect(throws: ConfigurationError.self) { try options.sized(batchesPerEpoch: 15) }
        options.epochs = 1
        options.warmupFraction = 1
        #expect(throws: ConfigurationError.self) { try options.sized(batchesPerEpoch: 15) }
    }
}

@Suite struct LanguageAdapterCorpusTests {
    /// A language adapter trains on no verse that a genre set evaluates on: not the
    /// chapter split's dev and test chapters, not the book split's dev and test books.
    @Test func bibleCorpusLeavesOutEveryEvaluatedVerse() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("graft-corpus-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        let cache = DataCache(root: root)
        let books = [1, 4, 40, 43, 44, 66]  // Genesis (train), Numbers (test), Matthew (train), John (test), Acts, Revelation
        let verses = books.flatMap { book in
            (1...BibleBook.canon[book - 1].chapters).map { Verse(book: book, chapter: $0, verse: 1, text: "\(book):\($0)") }
        }
        try prepare(.chichewaBible, verses, in: cache)
        let corpus = try TextCorpus.load("chichewa-bible", cache: cache)
        let (chapters, bookSplits) = (Genre.chapterSplits(), Genre.bookSplits())
        func place(_ text: String) -> (book: Int, chapter: Int) {
            let parts = text.split(separator: ":").map { Int($0)! }
            return (parts[0], parts[1])
        }
        #expect(!corpus.train.isEmpty && !corpus.heldOut.isEmpty)
        for text in corpus.train {
            let (book, chapter) = place(text)
            #expect(chapters[BibleChapter(book: book, chapter: chapter)] == .train)
            #expect(bookSplits[book] == nil || bookSplits[book] == .train, "\(text)")
        }
        #expect(Set(corpus.train.map { place($0).book }) == [1, 40, 44, 66])
        #expect(corpus.heldOut.allSatisfy { chapters[BibleChapter(book: place($0).book, chapter: place($0).chapter)] == .test })

        // Joined with a translation that lacks some verses: the pairs are the verses both have, split alike.
        let translated = verses.filter { $0.chapter % 3 != 0 }.map { Verse(book: $0.book, chapter: $0.chapter, verse: 1, text: "en \($0.text)") }
        try prepare(.englishBible, translated, in: cache)
        let (texts, translations) = try TextCorpus.loadParallel("chichewa-bible", translations: "english-bible", cache: cache)
        #expect(texts.train == corpus.train.filter { place($0).chapter % 3 != 0 })
        #expect(texts.heldOut == corpus.heldOut.filter { place($0).chapter % 3 != 0 })
        #expect(translations.train == texts.train.map { "en \($0)" } && translations.heldOut == texts.heldOut.map { "en \($0)" })
        #expect(throws: DataError.self) { try TextCorpus.loadParallel("chichewa-bible", translations: "zoo", cache: cache) }
    }

    /// Writes `verses` as the prepared `recipe` in `cache`.
    func prepare(_ recipe: DataRecipe, _ verses: [Verse], in cache: DataCache) throws {
        let path = cache.path(of: recipe)
        try JSONLines.write(verses, to: path)
        try "\(sha256(of: path))  \(recipe.rawValue).jsonl\n".write(toFile: path + ".sha256", atomically: true, encoding: .utf8)
    }
}

@Suite struct StackedTrainingTests {
    /// Stack(language, task): the frozen language adapter takes no update however hard the task
    /// adapter trains, the probe start makes the head separate the classes before any update,
    /// and two adapters made from one seed by different streams do not start equal.
    @Test func theLanguageAdapterStaysFrozenUnderATrainingTaskAdapter() throws {
        let backbone = try TinyBackbone.make()
        let model = GraftedModel(encoder: backbone.encoder)
        let language = BottleneckAdapter(.seqBnInv, model: backbone.configuration, seed: 1)
        language.setTrainable(false)
        try model.add("language", language)
        try model.add("task", BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 2))
        try model.activate(.stack([.single("language"), .single("task")]))
        let before = model.namedParameters(of: ["language"]).map(\.parameter.value)
        let taskBefore = model.namedParameters(of: ["task"]).map(\.parameter.value)
        #expect(before.count > 0 && taskBefore.count > 0)

        let classifier = Classifier(backbone: backbone, model: model, kind: .sequence, labels: ["wet", "dry"], seed: 3)
        let texts = ["water mawu a", "ndi wind a"]
        let examples = (0..<16).map { SequenceExample(ids: backbone.tokenizer.encode(texts[$0 % 2], maxLength: nil), label: $0 % 2) }
        let probe = classifier.fitProbe(train: examples, dev: examples)
        #expect(probe.dev.macroF1 == 1)
        #expect(classifier.evaluate(examples).macroF1 == 1)

        var options = TrainingOptions()
        (options.steps, options.learningRate) = (5, 0.05)
        let parameters = model.namedParameters(of: ["task"]) + classifier.head.namedParameters()
        let trainer = try Trainer(parameters: parameters, options: options)
        try trainer.run(loss: { step, _, tape in
            let (loss, tokens) = classifier.loss(examples, seed: UInt64(step), tape: tape)
            return (loss, tokens)
        })
        #expect(model.namedParameters(of: ["language"]).map(\.parameter.value) == before)
        #expect(model.namedParameters(of: ["task"]).map(\.parameter.value) != taskBefore)
        #expect(BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 1).namedParameters().map(\.parameter.value)
                != BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 2).namedParameters().map(\.parameter.value))
    }
}
