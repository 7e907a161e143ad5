import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftText

/// A backbone with adapters and a masked-LM head: the language-adapter task.
public final class MaskedLanguageModel {
    public let backbone: Backbone
    public let model: GraftedModel
    public let head: MaskedLMHead
    public let corruption: MaskedLanguageModeling

    public init(backbone: Backbone, model: GraftedModel, head: MaskedLMHead) {
        self.backbone = backbone
        self.model = model
        self.head = head
        corruption = MaskedLanguageModeling(tokenizer: backbone.tokenizer)
    }

    /// Masked-LM loss of a batch, with masking and dropout drawn from `seed`;
    /// the vocabulary logits are computed at the masked positions only.
    /// Returns the loss and the number of tokens in the batch.
    public func loss(_ sequences: [[Int]], seed: UInt64, tape: Tape?, training: Bool = true) -> (loss: Variable, tokens: Int) {
        var generator = SeededGenerator(seed: seed)
        var corrupted = sequences
        var labels: [[Int]] = []
        for i in corrupted.indices { labels.append(corruption.corrupt(&corrupted[i], generator: &generator)) }
        let input = EncoderInput(padding: corrupted, padID: backbone.tokenizer.padID)
        let paddedLabels = labels.flatMap { $0 + [Int](repeating: Variable.ignoreIndex, count: input.length - $0.count) }
        let rows = paddedLabels.indices.filter { paddedLabels[$0] != Variable.ignoreIndex }
        let context = model.context(tape: tape, isTraining: training, seed: seed)
        let hidden = model(input, context: context)
        let loss = head.loss(hidden, rows: rows, targets: rows.map { paddedLabels[$0] }, context: context)
        return (loss, sequences.reduce(0) { $0 + $1.count })
    }

    /// Pseudo-perplexity: every non-special token is masked in turn and scored
    /// by the model, `PPPL = exp(-(1/N) Σ log p(token))` over all `N` scored tokens.
    public func pseudoPerplexity(_ sequences: [[Int]], rowsPerPass: Int = 64) -> Double {
        var logProbabilities: [Double] = []
        let special = corruption.specialIDs
        for sequence in sequences {
            let positions = sequence.indices.filter { !special.contains(sequence[$0]) }
            for start in stride(from: 0, to: positions.count, by: rowsPerPass) {
                let chunk = positions[start..<min(start + rowsPerPass, positions.count)]
                let copies = chunk.map { position -> [Int] in
                    var copy = sequence
                    copy[position] = corruption.maskID
                    return copy
                }
                let input = EncoderInput(padding: copies, padID: backbone.tokenizer.padID)
                let rows = chunk.enumerated().map { $0.offset * input.length + $0.element }
                let context = model.context()
                let logits = head(model(input, context: context), rows: rows, context: context).value.logSoftmax()
                let vocabulary = logits.shape[1]
                for (i, position) in chunk.enumerated() {
                    logProbabilities.append(Double(logits.scalars[i * vocabulary + sequence[position]]))
                }
            }
        }
        return perplexity(logProbabilities: logProbabilities)
    }
}
