import Foundation
import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftText

/// A backbone with adapters and a masked-LM head: the language-adapter task.
public final class MaskedLanguageModel {
    /// The frozen backbone; its tokenizer's `padID` pads the batches.
    public let backbone: Backbone
    /// The backbone's encoder with the adapters, run under its active setup.
    public let model: GraftedModel
    /// The masked-LM head, its decoder tied to the word embeddings.
    public let head: MaskedLMHead
    /// The masking applied to training batches; its special ids and mask id also serve pseudo-perplexity.
    public let corruption: MaskedLanguageModeling
    /// The vocabulary the training loss's softmax runs over; `nil` (the default)
    /// for the full vocabulary. Evaluation always uses the full vocabulary.
    ///
    /// The decoder's weight (the word embeddings) is gathered at these ids once,
    /// when first needed, while it is frozen; set the vocabulary again after
    /// changing the frozen weight's value. A trainable weight is gathered every step.
    public var trainingVocabulary: OutputVocabulary? {
        didSet { restrictedWeight = nil }
    }
    /// The frozen decoder weight's rows at `trainingVocabulary`'s ids.
    private var restrictedWeight: Tensor?
    /// With a `trainingVocabulary`, each training batch also scores this many ids
    /// from outside it, drawn uniformly from the batch's seed (sampled softmax):
    /// their logits get `log(outside / sampled)` added, so their exponentials
    /// estimate the whole outside's share of the softmax, and the tokens the
    /// corpus lacks are pushed down as a full-vocabulary softmax would (0: none).
    public var negativeSamples = 0
    /// Weight of the feature anchor added to the training loss (0, the default: none).
    ///
    /// The anchor is the batch mean of `‖p − p₀‖² / ‖p₀‖²`, where `p` is the adapted
    /// model's mean-pooled output and `p₀` the plain backbone's on the same input
    /// and with the same dropout masks (the same masks exactly when the adapter
    /// itself draws no dropout, as the bottleneck adapters' defaults):
    /// the adapter learns the language while the sentence embeddings the backbone
    /// was trained to produce (a contrastive model's, such as multilingual-e5) stay
    /// where they were. It costs one more forward pass of the frozen backbone per step.
    /// With `anchorTargets` passed to ``loss(_:anchorTargets:seed:tape:training:)``, `p₀` is
    /// the plain backbone's pooled output of each text's translation instead, without
    /// dropout: the adapter pulls the language's embeddings onto the translations'
    /// (multilingual distillation, Reimers & Gurevych 2020, with the frozen backbone as teacher).
    public var anchorWeight: Float = 0

    /// The task with BERT's 15% masking by the backbone's tokenizer, the full vocabulary,
    /// no negative samples and no anchor.
    public init(backbone: Backbone, model: GraftedModel, head: MaskedLMHead) {
        self.backbone = backbone
        self.model = model
        self.head = head
        corruption = MaskedLanguageModeling(tokenizer: backbone.tokenizer)
    }

    /// Masked-LM loss of a batch, with masking and dropout drawn from `seed`;
    /// the vocabulary logits are computed at the masked positions only.
    /// Returns the loss and the number of tokens in the batch.
    ///
    /// `training` turns dropout on and, with a `trainingVocabulary`, restricts the
    /// softmax to it (every masked token must be in it); with `training` false
    /// (evaluation) the loss is over the full vocabulary. `anchorTargets`, one per
    /// sequence (such as its translation), are what the feature anchor pulls each
    /// sequence's pooled output toward; `nil`: the sequence itself (see ``anchorWeight``).
    public func loss(_ sequences: [[Int]], anchorTargets: [[Int]]? = nil, seed: UInt64, tape: Tape?,
                     training: Bool = true) -> (loss: Variable, tokens: Int) {
        let (input, rows, targets) = maskedBatch(sequences, seed: seed)
        let context = model.context(tape: tape, isTraining: training, seed: seed)
        let hidden = model(input, context: context)
        var loss: Variable
        if training, let vocabulary = trainingVocabulary {
            loss = head.loss(hidden, rows: rows, targets: vocabulary.restrict(targets), context: context,
                             decoder: restrictedDecoder(vocabulary, negatives: sampledNegatives(vocabulary, seed: seed),
                                                        context: context))
        } else {
            loss = head.loss(hidden, rows: rows, targets: targets, context: context)
        }
        if training, anchorWeight > 0 {
            loss = loss + anchorWeight * featureAnchor(hidden, input: input, targets: anchorTargets, seed: seed, isTraining: true)
        }
        return (loss, sequences.reduce(0) { $0 + $1.count })
    }

    /// `anchorWeight`'s penalty: the mean over the batch of `‖p − p₀‖² / ‖p₀‖²`, with `p`
    /// pooled from `hidden` (the adapted model's output, computed with `seed` and
    /// `isTraining`) and `p₀` from the plain backbone: on `input` with the same dropout
    /// stream, or on `targets` (one per row) without dropout.
    func featureAnchor(_ hidden: Variable, input: EncoderInput, targets: [[Int]]? = nil, seed: UInt64, isTraining: Bool) -> Variable {
        precondition(targets == nil || targets!.count == input.batchSize, "one anchor target per sequence")
        let (targetInput, dropout) = targets.map { (EncoderInput(padding: $0, padID: backbone.tokenizer.padID), false) } ?? (input, isTraining)
        let plain = ForwardContext(tape: nil, isTraining: dropout, seed: seed)
        let target = meanPool(model.encoder(targetInput, context: plain), input: targetInput).value
        let width = target.shape[1]
        let inverseSquaredNorms = Tensor(shape: [input.batchSize], generating: { row in
            1 / Swift.max(target.scalars[(row * width)..<((row + 1) * width)].reduce(0) { $0 + $1 * $1 }, 1e-12)
        })
        let difference = meanPool(hidden, input: input) - Variable(target)
        return ((difference * difference).sum(alongAxis: 1) * Variable(inverseSquaredNorms)).mean()
    }

    /// The batch `loss` scores: `sequences` corrupted with masking drawn from `seed`,
    /// the masked rows of the flattened batch and their original ids.
    func maskedBatch(_ sequences: [[Int]], seed: UInt64) -> (input: EncoderInput, rows: [Int], targets: [Int]) {
        var generator = SeededGenerator(seed: seed)
        var corrupted = sequences
        var labels: [[Int]] = []
        for i in corrupted.indices { labels.append(corruption.corrupt(&corrupted[i], generator: &generator)) }
        if labels.allSatisfy({ $0.allSatisfy { $0 == Variable.ignoreIndex } }) {
            // Selection can pick no token of a short batch; a step on nothing would log a loss of 0 and
            // change nothing, so one maskable token, drawn at random, is masked instead.
            let candidates = corrupted.indices.flatMap { i in
                corrupted[i].indices.filter { !corruption.specialIDs.contains(corrupted[i][$0]) }.map { (i, $0) }
            }
            if !candidates.isEmpty {
                let (i, j) = candidates[Int(generator.next() % UInt64(candidates.count))]
                (labels[i][j], corrupted[i][j]) = (corrupted[i][j], corruption.maskID)
            }
        }
        let input = EncoderInput(padding: corrupted, padID: backbone.tokenizer.padID)
        let paddedLabels = labels.flatMap { $0 + [Int](repeating: Variable.ignoreIndex, count: input.length - $0.count) }
        let rows = paddedLabels.indices.filter { paddedLabels[$0] != Variable.ignoreIndex }
        return (input, rows, rows.map { paddedLabels[$0] })
    }

    /// The outside ids a training batch with this seed scores (`negativeSamples` of them).
    func sampledNegatives(_ vocabulary: OutputVocabulary, seed: UInt64) -> [Int] {
        guard negativeSamples > 0 else { return [] }
        var generator = SeededGenerator(seed: seed ^ 0x6E65_6761_7469_7665)
        return vocabulary.sampleOutside(negativeSamples, generator: &generator)
    }

    /// The decoder's weight and bias rows at `vocabulary`'s ids, then at `negatives`
    /// (with the sampled-softmax correction on their bias): the bias (trained)
    /// gathered on the step's tape, the vocabulary's weight rows from the cache
    /// while the weight is frozen.
    private func restrictedDecoder(_ vocabulary: OutputVocabulary, negatives: [Int],
                                   context: ForwardContext) -> (weight: Variable, bias: Variable) {
        let ids = vocabulary.ids + negatives
        var bias = OutputVocabulary.rows(of: context.variable(head.decoderBias), at: ids, fullSize: vocabulary.fullSize)
        if !negatives.isEmpty {
            let correction = Float(Foundation.log(Double(vocabulary.outsideCount) / Double(negatives.count)))
            bias = bias + Variable(Tensor(shape: [ids.count], scalars: [Float](repeating: 0, count: vocabulary.count)
                                                 + [Float](repeating: correction, count: negatives.count)))
        }
        guard !head.decoderWeight.isTrainable else {
            return (OutputVocabulary.rows(of: context.variable(head.decoderWeight), at: ids, fullSize: vocabulary.fullSize), bias)
        }
        if restrictedWeight == nil { restrictedWeight = head.decoderWeight.value.gatherRows(vocabulary.ids) }
        let weight = negatives.isEmpty ? restrictedWeight!
            : Tensor.concatenate([restrictedWeight!, head.decoderWeight.value.gatherRows(negatives)], alongAxis: 0)
        return (Variable(weight), bias)
    }

    /// How far the adapters move the backbone's sentence embeddings: the feature
    /// anchor's `‖p − p₀‖² / ‖p₀‖²` on the uncorrupted `sequences`, without dropout,
    /// averaged over batches of `batchSize`. With `targets` (one per sequence, such as
    /// its translation), `p₀` is the plain backbone's embedding of the target, and
    /// `adapted` false measures the plain backbone's `p` instead of the adapted model's.
    public func pooledDistance(_ sequences: [[Int]], to targets: [[Int]]? = nil, adapted: Bool = true, batchSize: Int = 32) -> Double {
        var total = 0.0
        for start in stride(from: 0, to: sequences.count, by: batchSize) {
            let range = start..<min(start + batchSize, sequences.count)
            let input = EncoderInput(padding: Array(sequences[range]), padID: backbone.tokenizer.padID)
            let hidden = adapted ? model(input, context: model.context())
                : model.encoder(input, context: ForwardContext(tape: nil, isTraining: false, seed: 0))
            let distance = featureAnchor(hidden, input: input, targets: targets.map { Array($0[range]) }, seed: 0, isTraining: false)
            total += Double(distance.value.scalar) * Double(range.count)
        }
        return total / Double(max(sequences.count, 1))
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
