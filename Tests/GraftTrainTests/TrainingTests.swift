import Foundation
import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import GraftData
import GraftText
import Testing
@testable import GraftTrain

/// A tiny masked-LM setup: the tiny backbone, a seq_bn adapter and a fresh head.
func tinyMaskedLM(seed: UInt64 = 0) throws -> (task: MaskedLanguageModel, parameters: [(name: String, parameter: Parameter)], texts: [[Int]]) {
    let backbone = try TinyBackbone.make()
    let model = GraftedModel(encoder: backbone.encoder)
    try model.add("lang", BottleneckAdapter(.seqBn, model: backbone.configuration, seed: seed))
    try model.activate(.single("lang"))
    var generator = SeededGenerator(seed: seed)
    let head = MaskedLMHead(tiedTo: backbone.encoder, generator: &generator)
    let task = MaskedLanguageModel(backbone: backbone, model: model, head: head)
    let texts = ["mawu a ndi", "water mawu", "ndi a mawu water", "a a ndi", "mawu", "water water ndi a"]
        .map { backbone.tokenizer.encode($0, maxLength: nil) }
    return (task, model.namedParameters() + head.namedParameters().map { ("head.\($0.name)", $0.parameter) }, texts)
}

@Suite struct MaskedLanguageModelingTests {
    @Test func corruptionFollowsBERTsRecipe() throws {
        let tokenizer = try TinyBackbone.tokenizer()
        let corruption = MaskedLanguageModeling(tokenizer: tokenizer)
        var generator = SeededGenerator(seed: 3)
        var selected = 0, masked = 0, unchanged = 0, total = 0
        for _ in 0..<2000 {
            let original = [0] + (0..<20).map { _ in 4 + Int(generator.next() % 10) } + [2]
            var ids = original
            let labels = corruption.corrupt(&ids, generator: &generator)
            #expect(labels.first == Variable.ignoreIndex && labels.last == Variable.ignoreIndex)
            total += 20
            for i in ids.indices where labels[i] != Variable.ignoreIndex {
                #expect(labels[i] == original[i])
                selected += 1
                if ids[i] == tokenizer.maskID { masked += 1 } else if ids[i] == original[i] { unchanged += 1 }
            }
        }
        #expect(abs(Double(selected) / Double(total) - 0.15) < 0.01)
        #expect(abs(Double(masked) / Double(selected) - 0.8) < 0.02)
        // "Unchanged" also catches random replacements that drew the same id.
        #expect(abs(Double(unchanged) / Double(selected) - 0.1) < 0.02)
    }

    /// A batch in which selection picks no token still trains on one masked token, never on nothing.
    @Test func aBatchWithNothingSelectedMasksOneToken() throws {
        let (task, _, texts) = try tinyMaskedLM()
        let short = [texts[4]]  // "mawu": <s>, one or two pieces, </s>
        var emptySelections = 0
        for seed in UInt64(0)..<40 {
            var generator = SeededGenerator(seed: seed), ids = short[0]
            if task.corruption.corrupt(&ids, generator: &generator).allSatisfy({ $0 == Variable.ignoreIndex }) { emptySelections += 1 }
            let (_, rows, targets) = task.maskedBatch(short, seed: seed)
            #expect(!rows.isEmpty && targets.allSatisfy { !task.corruption.specialIDs.contains($0) })
        }
        #expect(emptySelections > 10)  // the case this guards is common for short batches
    }

    @Test func lengthBucketsCoverEveryExampleOnce() {
        let lengths = (0..<103).map { ($0 * 37) % 50 }
        let batches = lengthBucketedBatches(lengths: lengths, batchSize: 8, seed: 1, poolFactor: 4)
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<103))
        #expect(batches.allSatisfy { $0.count <= 8 })
        #expect(batches == lengthBucketedBatches(lengths: lengths, batchSize: 8, seed: 1, poolFactor: 4))
    }

    /// The feature anchor of `task` on `texts`, with dropout drawn from seed 5 when `isTraining`.
    func featureAnchor(_ task: MaskedLanguageModel, _ texts: [[Int]], tape: Tape? = nil, isTraining: Bool = false) -> Variable {
        let input = EncoderInput(padding: texts, padID: task.backbone.tokenizer.padID)
        let context = task.model.context(tape: tape, isTraining: isTraining, seed: 5)
        return task.featureAnchor(task.model(input, context: context), input: input, seed: 5, isTraining: isTraining)
    }

    /// The feature anchor is 0 while the adapter is the identity (seq_bn starts near it, and the
    /// backbone's dropout masks are the same on both sides), its gradient matches central differences,
    /// and training with it brings a moved pooled output back toward the backbone's.
    @Test func theFeatureAnchorHoldsThePooledOutputNearTheBackbones() throws {
        let (task, _, texts) = try tinyMaskedLM()
        let batch = Array(texts.prefix(3))
        #expect(featureAnchor(task, batch).value.scalar < 1e-4)
        #expect(featureAnchor(task, batch, isTraining: true).value.scalar < 1e-4)
        let adapter = try #require(task.model.adapters["lang"])
        randomize(adapter, seed: 2, scale: 0.1)
        #expect(featureAnchor(task, batch).value.scalar > 1e-3)
        #expect(parameterGradientErrors(adapter.namedParameters().map(\.parameter)) { featureAnchor(task, batch, tape: $0) }
            .allSatisfy { $0 < 1e-2 })

        func distanceAfterTraining(anchorWeight: Float) throws -> Float {
            let (task, parameters, _) = try tinyMaskedLM()
            randomize(try #require(task.model.adapters["lang"]), seed: 2, scale: 0.1)
            task.anchorWeight = anchorWeight
            var options = TrainingOptions()
            options.steps = 20
            options.learningRate = 1e-2
            let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: nil)
            try trainer.run(loss: { step, micro, tape in
                let (loss, tokens) = task.loss(batch, seed: trainer.seed(step: step, micro: micro), tape: tape)
                return (loss, items: tokens)
            })
            return featureAnchor(task, batch).value.scalar
        }
        let (anchored, free) = (try distanceAfterTraining(anchorWeight: 100), try distanceAfterTraining(anchorWeight: 0))
        #expect(anchored < 0.5 * free)
    }

    /// Anchored to translations, the anchor measures each text's pooled output against the plain
    /// backbone's embedding of its target: 0 when the target is the text itself and the adapter the
    /// identity (seq_bn starts near it), with a gradient that matches central differences; training with it brings the texts'
    /// embeddings toward their targets'.
    @Test func theTranslationAnchorPullsEmbeddingsOntoTheTranslations() throws {
        let (task, parameters, texts) = try tinyMaskedLM()
        let (batch, targets) = (Array(texts.prefix(3)), Array(texts.suffix(3)))
        let input = EncoderInput(padding: batch, padID: task.backbone.tokenizer.padID)
        func anchor(_ targets: [[Int]], tape: Tape? = nil) -> Variable {
            task.featureAnchor(task.model(input, context: task.model.context(tape: tape)), input: input, targets: targets,
                               seed: 0, isTraining: false)
        }
        #expect(anchor(batch).value.scalar < 1e-4)
        let before = task.pooledDistance(batch, to: targets)
        #expect(abs(before - task.pooledDistance(batch, to: targets, adapted: false)) < 1e-2 * before)
        #expect(abs(before - Double(anchor(targets).value.scalar)) < 1e-5)
        randomize(try #require(task.model.adapters["lang"]), seed: 2, scale: 0.1)
        #expect(parameterGradientErrors(task.model.adapters["lang"]!.namedParameters().map(\.parameter)) { anchor(targets, tape: $0) }
            .allSatisfy { $0 < 1e-2 })

        task.anchorWeight = 100
        var options = TrainingOptions()
        options.steps = 20
        options.learningRate = 1e-2
        let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: nil)
        let moved = task.pooledDistance(batch, to: targets)
        try trainer.run(loss: { step, micro, tape in
            let (loss, tokens) = task.loss(batch, anchorTargets: targets, seed: trainer.seed(step: step, micro: micro), tape: tape)
            return (loss, items: tokens)
        })
        #expect(task.pooledDistance(batch, to: targets) < 0.8 * moved)
    }

    @Test func pseudoPerplexityIsTheExponentOfTheMeanNegativeLogProbability() throws {
        let (task, _, texts) = try tinyMaskedLM()
        let pppl = task.pseudoPerplexity(Array(texts.prefix(3)))
        // A random head over 18 pieces: the perplexity is finite and near the vocabulary size.
        #expect(pppl.isFinite && pppl > 1 && pppl < 200)
        #expect(task.pseudoPerplexity(Array(texts.prefix(3)), rowsPerPass: 1) - pppl < 1e-3)
    }
}

@Suite struct TrainerTests {
    struct Killed: Error {}

    func run(steps: Int, checkpoint: String?, checkpointEvery: Int?, resume: Bool,
             killAt: Int? = nil, learningRate: Float = 1e-2) throws -> (losses: [Float], trainer: Trainer) {
        let (task, parameters, texts) = try tinyMaskedLM()
        var options = TrainingOptions()
        options.steps = steps
        options.learningRate = learningRate
        options.warmupSteps = 2
        options.gradientAccumulation = 2
        options.checkpointEvery = checkpointEvery
        let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: checkpoint)
        if resume, let checkpoint { try trainer.resume(from: checkpoint) }
        var losses: [Float] = []
        try trainer.run(loss: { step, micro, tape in
            if step == killAt { throw Killed() }
            let batch = (0..<3).map { texts[(step * 3 + micro + $0) % texts.count] }
            let (loss, tokens) = task.loss(batch, seed: trainer.seed(step: step, micro: micro), tape: tape)
            return (loss, tokens)
        }, onStep: { losses.append($0.loss) })
        return (losses, trainer)
    }

    @Test func resumingRepeatsTheUninterruptedRunExactly() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (full, _) = try run(steps: 8, checkpoint: nil, checkpointEvery: nil, resume: false)
        // Killed during step 5: the checkpoint of step 4 is the last one written.
        #expect(throws: Killed.self) { try run(steps: 8, checkpoint: path, checkpointEvery: 2, resume: false, killAt: 4) }
        let (resumed, trainer) = try run(steps: 8, checkpoint: path, checkpointEvery: 2, resume: true)
        #expect(resumed == Array(full.suffix(4)))
        #expect(trainer.history.map(\.loss) == full)
    }

    /// A checkpoint resumes only the run it belongs to: other settings are named and refused
    /// (the checkpoint interval may change: it alters nothing the run computes).
    @Test func resumingWithOtherSettingsIsRefused() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: Killed.self) { try run(steps: 8, checkpoint: path, checkpointEvery: 2, resume: false, killAt: 4) }
        let changed = try #require(throws: TrainingError.self) {
            try run(steps: 6, checkpoint: path, checkpointEvery: 2, resume: true, learningRate: 5e-3)
        }
        #expect(changed.description.contains("--learning-rate, --steps"), "\(changed)")
        _ = try run(steps: 8, checkpoint: path, checkpointEvery: 3, resume: true)
    }

    @Test func aNonFiniteLossStopsAndKeepsTheLastCheckpoint() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (task, parameters, texts) = try tinyMaskedLM()
        var options = TrainingOptions()
        options.steps = 10
        options.checkpointEvery = 2
        let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: path)
        var snapshot: [Tensor] = []
        #expect(throws: TrainingError.nonFiniteLoss(step: 5, lastCheckpoint: path)) {
            try trainer.run(loss: { step, micro, tape in
                if step == 4 {
                    snapshot = parameters.map(\.parameter.value)
                    return (Variable(Tensor(scalar: .nan)), 1)
                }
                let (loss, tokens) = task.loss([texts[step % texts.count]], seed: trainer.seed(step: step, micro: micro), tape: tape)
                return (loss, tokens)
            })
        }
        // Nothing was updated by the bad step, and the checkpoint holds step 4.
        #expect(parameters.map(\.parameter.value) == snapshot)
        let restored = try Trainer(parameters: parameters, options: options, checkpointPath: path)
        try restored.resume(from: path)
        #expect(restored.step == 4)
    }

    @Test func trainingLowersTheMaskedLMLoss() throws {
        let (losses, _) = try run(steps: 30, checkpoint: nil, checkpointEvery: nil, resume: false)
        let early = losses.prefix(5).reduce(0, +) / 5, late = losses.suffix(5).reduce(0, +) / 5
        #expect(late < early)
    }

    @Test func invalidOptionsAreRejected() {
        var options = TrainingOptions()
        options.steps = 0
        #expect(throws: ConfigurationError.self) { try options.validate() }
        options.steps = 10
        options.warmupSteps = 11
        #expect(throws: ConfigurationError.self) { try options.validate() }
    }
}

@Suite struct MetricsTests {
    @Test func classificationReportMatchesHandComputedScores() {
        // truth:      a a a b b c
        // prediction: a a b b c c
        let report = ClassificationReport(predictions: [0, 0, 1, 1, 2, 2], truth: [0, 0, 0, 1, 1, 2], labels: ["a", "b", "c"])
        #expect(abs(report.accuracy - 4.0 / 6.0) < 1e-12)
        // F1: a = 2·1·(2/3)/(5/3) = 0.8; b = 0.5; c = 2·0.5·1/1.5 = 2/3.
        #expect(abs(report.classes[0].f1 - 0.8) < 1e-12)
        #expect(abs(report.classes[1].f1 - 0.5) < 1e-12)
        #expect(abs(report.classes[2].f1 - 2.0 / 3.0) < 1e-12)
        #expect(abs(report.macroF1 - (0.8 + 0.5 + 2.0 / 3.0) / 3) < 1e-12)
        #expect(report.description.contains("macro-F1 0.6556"))
    }

    @Test func perplexityOfUniformPredictions() {
        #expect(abs(perplexity(logProbabilities: [Double](repeating: -Foundation.log(8.0), count: 5)) - 8) < 1e-9)
    }
}

@Suite struct TokenizedTextTests {
    /// A labelled set tokenized for a peer holds exactly the examples, in the order, that `adapt train` trains on.
    @Test func aLabelledSetIsTokenizedInTheSampleAndOrderTrainingUses() throws {
        let path = TinyBackbone.temporaryPath(".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let words = ["mawu", "a", "ndi", "water"]
        let lines = (0..<30).map { i in
            LabelledText(text: (0...(i % 5)).map { words[(i + $0) % 4] }.joined(separator: " "), label: ["x", "y", "z"][i % 3],
                         split: i < 20 ? .train : (i < 25 ? .dev : .test))
        }
        try JSONLines.write(lines, to: path)
        let tokenizer = try TinyBackbone.tokenizer()
        let limits = SplitLimits(train: 7, dev: nil, test: 3, seed: 5)
        let tokenized = try TokenizedText.load(path, tokenizer: tokenizer, maxLength: 6, limits: limits)
        let data = try LabelledData<SequenceExample>.load(path, tokenizer: tokenizer, maxLength: 6, limits: limits)
        let expected = DataSplit.allCases.flatMap { split in
            data.split(split).map { TokenizedText(ids: $0.ids, label: data.labels[$0.label], split: split) }
        }
        #expect(tokenized == expected && tokenized.count == 15)
        #expect(tokenized[0].jsonLine == #"{"ids":[\#(tokenized[0].ids.map(String.init).joined(separator: ","))],"label":"\#(tokenized[0].label!)","split":"train"}"#)
        #expect(TokenizedText(ids: [0, 2], label: nil, split: .dev).jsonLine == #"{"ids":[0,2],"split":"dev"}"#)
    }

    /// A dev or test label that the training split never has is refused at its line, with training's labels.
    @Test func aLabelTrainingNeverHasIsNamedWithItsLine() throws {
        let path = TinyBackbone.temporaryPath(".jsonl")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try JSONLines.write([LabelledText(text: "a", label: "wet", split: .train), LabelledText(text: "b", label: "dry", split: .train),
                             LabelledText(text: "c", label: "frozen", split: .test)], to: path)
        let error = DataError.unknownLabel(path: path, line: 3, label: "frozen", expected: ["wet", "dry"])
        #expect(throws: error) { try LabelledData<SequenceExample>.load(path, tokenizer: try TinyBackbone.tokenizer(), maxLength: 6) }
        #expect(error.description == "\(path):3: unknown label \"frozen\"; expected one of wet, dry")
        #expect(DataError.unknownLabel(path: path, line: 0, label: "X", expected: ["NOUN"]).description
                == "\(path): unknown label \"X\"; expected one of NOUN")
    }
}
