import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor

/// Sequence classification with a UniPT side network: the frozen backbone runs
/// without a tape, the side network and the head are trained.
public final class UniPTClassifier {
    public let backbone: Backbone
    public let side: UniPT
    public let head: SequenceClassificationHead
    public let labels: [String]

    /// A classifier around an existing side network and head.
    public init(backbone: Backbone, side: UniPT, head: SequenceClassificationHead, labels: [String]) {
        self.backbone = backbone
        self.side = side
        self.head = head
        self.labels = labels
    }

    /// A fresh side network (seed `seed`) and head (seed `seed + 1`) for `labels.count` classes.
    /// - Throws: `ConfigurationError` if `configuration` does not fit the backbone.
    public convenience init(backbone: Backbone, configuration: UniPTConfiguration, labels: [String], pooling: Pooling = .first,
                            seed: UInt64) throws {
        let side = try UniPT(for: backbone.configuration, configuration: configuration, seed: seed)
        var generator = SeededGenerator(seed: seed &+ 1)
        let head = SequenceClassificationHead(hiddenSize: backbone.configuration.hiddenSize, classCount: labels.count,
                                              pooling: pooling, generator: &generator)
        self.init(backbone: backbone, side: side, head: head, labels: labels)
    }

    /// The trained parameters: `side.*` and `head.*`.
    public var trainableParameters: [(name: String, parameter: Parameter)] {
        side.namedParameters().map { ("side.\($0.name)", $0.parameter) } + head.namedParameters().map { ("head.\($0.name)", $0.parameter) }
    }

    /// `[batch, classes]` logits; dropout in the head when recording on a tape.
    public func logits(_ sequences: [[Int]], tape: Tape?, seed: UInt64 = 0) -> Variable {
        let input = EncoderInput(padding: sequences, padID: backbone.tokenizer.padID)
        let context = ForwardContext(tape: tape, isTraining: tape != nil, seed: seed)
        return head(side(backbone.encoder, input: input, tape: tape), input: input, context: context)
    }

    /// Cross-entropy of a batch and its token count.
    public func loss(_ batch: [SequenceExample], seed: UInt64, tape: Tape?) -> (loss: Variable, tokens: Int) {
        let logits = logits(batch.map(\.ids), tape: tape, seed: seed)
        return (Variable.crossEntropy(logits: logits, targets: batch.map(\.label)), batch.reduce(0) { $0 + $1.ids.count })
    }

    /// Scores examples (inference, length-bucketed batches).
    public func evaluate(_ examples: [SequenceExample], batchSize: Int = 32) -> ClassificationReport {
        var predictions = [Int](repeating: 0, count: examples.count)
        for batch in lengthBucketedBatches(lengths: examples.map(\.ids.count), batchSize: batchSize, seed: 0) {
            for (row, prediction) in zip(batch, logits(batch.map { examples[$0].ids }, tape: nil).value.argmax()) {
                predictions[row] = prediction
            }
        }
        return ClassificationReport(predictions: predictions, truth: examples.map(\.label), labels: labels)
    }
}
