import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftText

/// One example of sequence classification: token ids and a class index.
public struct SequenceExample: Sendable, Equatable {
    /// The text's token ids, framed by the tokenizer's special tokens.
    public var ids: [Int]
    /// The class, an index into the classifier's `labels`.
    public var label: Int
    /// An example of `ids` in class `label`.
    public init(ids: [Int], label: Int) { self.ids = ids; self.label = label }
}

/// One example of token classification: token ids and a label per token
/// (`Variable.ignoreIndex` for special tokens and non-initial sub-word pieces).
public struct TokenExample: Sendable, Equatable {
    /// The token ids, framed by the tokenizer's special tokens.
    public var ids: [Int]
    /// One class index per id, `Variable.ignoreIndex` where no label is scored.
    public var labels: [Int]
    /// An example of `ids` with their per-token `labels` (as many as `ids`).
    public init(ids: [Int], labels: [Int]) { self.ids = ids; self.labels = labels }

    /// Word-level tags on sub-word tokens: each word is tokenized on its own
    /// (with the tokenizer's special tokens stripped), its first piece carries
    /// the word's tag and the other pieces are ignored; the sequence is framed
    /// by the tokenizer's special tokens and cut to `maxLength`.
    public init(words: [String], tags: [Int], tokenizer: any Tokenizer, maxLength: Int) {
        let frame = tokenizer.encode("", maxLength: nil)
        let (opening, closing) = (frame.first!, frame.last!)
        var ids = [opening], labels = [Variable.ignoreIndex]
        for (word, tag) in zip(words, tags) {
            let pieces = tokenizer.encode(word, maxLength: nil).dropFirst().dropLast().filter { !tokenizer.specialIDs.contains($0) }
            guard ids.count + pieces.count < maxLength else { break }
            for (index, piece) in pieces.enumerated() {
                ids.append(piece)
                labels.append(index == 0 ? tag : Variable.ignoreIndex)
            }
        }
        self.ids = ids + [closing]
        self.labels = labels + [Variable.ignoreIndex]
    }
}

/// A backbone with adapters and a classification head (per sequence or per token).
public final class Classifier {
    /// What the head classifies: whole sequences or single tokens.
    public enum Kind: Sendable { case sequence, token }

    /// The backbone (frozen, except under full fine-tuning); its tokenizer's `padID` pads the batches.
    public let backbone: Backbone
    /// The backbone's encoder with the adapters, run under its active setup.
    public let model: GraftedModel
    /// A `SequenceClassificationHead` or a `TokenClassificationHead`, as `kind` says.
    public let head: any Module
    /// Whether the head classifies sequences or tokens.
    public let kind: Kind
    /// The class names, by class index.
    public let labels: [String]
    /// Per-class weights of the training loss (e.g. ``balancedClassWeights(labels:classCount:names:)``); nil weighs every example alike.
    public var classWeights: [Float]?

    /// A classifier with a fresh head of `labels.count` classes. Sequences are
    /// summarised by the mean over real tokens by default: the sentence-embedding
    /// convention of the bundled backbones (multilingual-e5, MiniLM).
    public init(backbone: Backbone, model: GraftedModel, kind: Kind, labels: [String], pooling: Pooling = .mean, seed: UInt64) {
        self.backbone = backbone
        self.model = model
        self.kind = kind
        self.labels = labels
        var generator = SeededGenerator(seed: seed)
        let hidden = backbone.configuration.hiddenSize
        head = kind == .sequence
            ? SequenceClassificationHead(hiddenSize: hidden, classCount: labels.count, pooling: pooling, generator: &generator)
            : TokenClassificationHead(hiddenSize: hidden, classCount: labels.count, generator: &generator)
    }

    /// A classifier around an existing (e.g. loaded) head.
    public init(backbone: Backbone, model: GraftedModel, head: any Module, kind: Kind, labels: [String]) {
        self.backbone = backbone
        self.model = model
        self.head = head
        self.kind = kind
        self.labels = labels
    }

    /// Logits: `[batch, classes]` (sequence) or `[batch * length, classes]` (token).
    public func logits(_ sequences: [[Int]], context: ForwardContext) -> (logits: Variable, input: EncoderInput) {
        let input = EncoderInput(padding: sequences, padID: backbone.tokenizer.padID)
        let hidden = model(input, context: context)
        switch head {
        case let head as SequenceClassificationHead: return (head(hidden, input: input, context: context), input)
        case let head as TokenClassificationHead: return (head(hidden, context: context), input)
        default: preconditionFailure("Classifier: unsupported head \(type(of: head))")
        }
    }

    /// Cross-entropy of a batch of sequence examples.
    public func loss(_ batch: [SequenceExample], seed: UInt64, tape: Tape?) -> (loss: Variable, tokens: Int) {
        let (logits, _) = logits(batch.map(\.ids), context: model.context(tape: tape, isTraining: tape != nil, seed: seed))
        return (Variable.crossEntropy(logits: logits, targets: batch.map(\.label), classWeights: classWeights),
                batch.reduce(0) { $0 + $1.ids.count })
    }

    /// Cross-entropy of a batch of token examples (ignored positions excluded).
    public func loss(_ batch: [TokenExample], seed: UInt64, tape: Tape?) -> (loss: Variable, tokens: Int) {
        let (logits, input) = logits(batch.map(\.ids), context: model.context(tape: tape, isTraining: tape != nil, seed: seed))
        let targets = batch.flatMap { $0.labels + [Int](repeating: Variable.ignoreIndex, count: input.length - $0.labels.count) }
        return (Variable.crossEntropy(logits: logits, targets: targets, classWeights: classWeights),
                batch.reduce(0) { $0 + $1.ids.count })
    }

    /// The features the head's classifier reads, `[examples, hidden]`: the model's output
    /// (adapters as they are now, no dropout) pooled as the head pools it, through the head's
    /// hidden layer when it has one.
    public func features(_ examples: [SequenceExample], batchSize: Int = 32) -> Tensor {
        guard let head = head as? SequenceClassificationHead else { preconditionFailure("Classifier.features: a sequence head is needed") }
        let hidden = backbone.configuration.hiddenSize
        var scalars = [Float](repeating: 0, count: examples.count * hidden)
        for batch in lengthBucketedBatches(lengths: examples.map(\.ids.count), batchSize: batchSize, seed: 0) {
            let input = EncoderInput(padding: batch.map { examples[$0].ids }, padID: backbone.tokenizer.padID)
            let context = model.context()
            let pooled = head.classifierInput(head.pool(model(input, context: context), input: input), context: context).value.scalars
            for (row, index) in batch.enumerated() {
                scalars.replaceSubrange((index * hidden)..<((index + 1) * hidden), with: pooled[(row * hidden)..<((row + 1) * hidden)])
            }
        }
        return Tensor(shape: [examples.count, hidden], scalars: scalars)
    }

    /// Sets the head's classifier to a linear probe fitted on the current model's
    /// features of `train` (``LogisticRegression``, weighted by `classWeights`), with
    /// the penalty among `penalties` that scores the best macro-F1 on `dev`.
    /// Returns the probe's dev report and the penalty chosen.
    @discardableResult
    public func fitProbe(train: [SequenceExample], dev: [SequenceExample],
                         penalties: [Float] = [1e-4, 1e-3, 1e-2]) -> (dev: ClassificationReport, l2: Float) {
        guard let head = head as? SequenceClassificationHead else { preconditionFailure("Classifier.fitProbe: a sequence head is needed") }
        let (trainFeatures, devFeatures) = (features(train), features(dev))
        var best: (probe: LogisticRegression, report: ClassificationReport, l2: Float)?
        for l2 in penalties {
            let probe = LogisticRegression.fit(features: trainFeatures, labels: train.map(\.label), classCount: labels.count,
                                               classWeights: classWeights, l2: l2)
            let report = ClassificationReport(predictions: probe.predict(devFeatures), truth: dev.map(\.label), labels: labels)
            if best.map({ report.macroF1 > $0.report.macroF1 }) ?? true { best = (probe, report, l2) }
        }
        head.classifier.weight.value = best!.probe.weight
        head.classifier.bias!.value = best!.probe.bias
        return (best!.report, best!.l2)
    }

    /// Class probabilities (no dropout), in the order of `sequences`: for each
    /// sequence, one row of `labels.count` probabilities (a sequence head) or one
    /// row per token (a token head). Batches group sequences of similar length.
    public func probabilities(_ sequences: [[Int]], batchSize: Int = 32) -> [[[Float]]] {
        var result = [[[Float]]](repeating: [], count: sequences.count)
        let classes = labels.count
        for batch in lengthBucketedBatches(lengths: sequences.map(\.count), batchSize: batchSize, seed: 0) {
            let (logits, input) = logits(batch.map { sequences[$0] }, context: model.context())
            let scalars = logits.value.softmax().scalars
            for (row, index) in batch.enumerated() {
                let (first, count) = kind == .sequence ? (row, 1) : (input.firstRows[row], sequences[index].count)
                result[index] = (0..<count).map { position in
                    let start = (first + position) * classes
                    return Array(scalars[start..<(start + classes)])
                }
            }
        }
        return result
    }

    /// Scores sequence examples.
    public func evaluate(_ examples: [SequenceExample], batchSize: Int = 32) -> ClassificationReport {
        var predictions = [Int](repeating: 0, count: examples.count)
        for batch in lengthBucketedBatches(lengths: examples.map(\.ids.count), batchSize: batchSize, seed: 0) {
            let (logits, _) = logits(batch.map { examples[$0].ids }, context: model.context())
            for (row, prediction) in zip(batch, logits.value.argmax()) { predictions[row] = prediction }
        }
        return ClassificationReport(predictions: predictions, truth: examples.map(\.label), labels: labels)
    }

    /// Scores token examples over their labelled positions (token-level scores).
    public func evaluate(_ examples: [TokenExample], batchSize: Int = 32) -> ClassificationReport {
        var predictions: [Int] = [], truth: [Int] = []
        for batch in lengthBucketedBatches(lengths: examples.map(\.ids.count), batchSize: batchSize, seed: 0) {
            let (logits, input) = logits(batch.map { examples[$0].ids }, context: model.context())
            let predicted = logits.value.argmax()
            for (row, index) in batch.enumerated() {
                for (position, label) in examples[index].labels.enumerated() where label != Variable.ignoreIndex {
                    predictions.append(predicted[input.firstRows[row] + position])
                    truth.append(label)
                }
            }
        }
        return ClassificationReport(predictions: predictions, truth: truth, labels: labels)
    }
}

/// The answer of a token head for one text: its words (split on white space) and
/// the most probable label of each (what `adapt predict` prints and `adapt serve`
/// returns for a tagger).
public struct TokenPrediction: Codable, Sendable, Equatable {
    /// The text's white-space-separated words.
    public let words: [String]
    /// One per word; `nil` for a word cut off by the token limit.
    public let labels: [String?]

    /// The words of `text` and their frame for a token head, built as training builds it
    /// (each word tokenized on its own, its first piece labelled).
    public static func frame(_ text: String, tokenizer: any Tokenizer, maxLength: Int) -> (words: [String], example: TokenExample) {
        let words = text.split(whereSeparator: \.isWhitespace).map(String.init)
        return (words, TokenExample(words: words, tags: [Int](repeating: 0, count: words.count), tokenizer: tokenizer, maxLength: maxLength))
    }

    /// The labels of `words` framed as `example`: `predictedClass(position)` is the
    /// head's most probable class at a token position, read at each word's first piece.
    public init(words: [String], example: TokenExample, labels: [String], predictedClass: (_ position: Int) -> Int) {
        self.words = words
        var wordLabels: [String?] = words.map { _ in nil }
        // The labelled positions are the first pieces of the words that fit, in order.
        let firstPieces = example.labels.indices.filter { example.labels[$0] != Variable.ignoreIndex }
        for (word, position) in firstPieces.enumerated() { wordLabels[word] = labels[predictedClass(position)] }
        self.labels = wordLabels
    }
}

/// The answer of a sequence head for one text: the most probable label and the
/// labels' probabilities (what `adapt predict` prints and `adapt serve` returns).
public struct SequencePrediction: Codable, Sendable, Equatable {
    /// The most probable label.
    public let label: String
    /// Softmax probabilities by label: all labels, or only the `topK` most probable.
    public let probabilities: [String: Float]

    /// The most probable label, and the probabilities of all labels or of the `topK` most probable.
    public init(probabilities: [Float], labels: [String], topK: Int?) {
        let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }
        label = labels[ranked[0]]
        self.probabilities = Dictionary(uniqueKeysWithValues: ranked.prefix(topK ?? ranked.count).map { (labels[$0], probabilities[$0]) })
    }
}
