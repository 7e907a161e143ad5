import GraftAutodiff
import GraftTensor

/// A batch of token ids for the encoder, one row per token: **padded**, every
/// example `length` rows with its padding marked in the attention mask, or
/// **packed**, each example's own tokens right after the previous example's,
/// with no padding at all (nothing is computed for padding; for inference on
/// texts of different lengths).
public struct EncoderInput: Sendable {
    /// The token ids, example after example; a padded example is padded with the pad id.
    public var ids: [Int]
    /// 1 for real tokens, 0 for padding; same layout as `ids`.
    public var attentionMask: [Int]
    /// Token types (segment ids), or all zeros when `nil`.
    public var tokenTypeIDs: [Int]?
    /// The number of examples (the `batch` of `[batch, hidden]` pooled outputs).
    public let batchSize: Int
    /// Rows per example when padded; the longest example's rows when packed.
    public let length: Int
    /// Each example's rows, in order (all `length` when padded).
    public let exampleLengths: [Int]
    /// Each example's first row.
    public let firstRows: [Int]
    /// Whether the examples are packed rather than padded.
    public let isPacked: Bool

    /// A padded batch of `batchSize` rows of `length` tokens.
    /// - Precondition: `ids` and `attentionMask` each hold `batchSize * length` entries.
    public init(ids: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int, length: Int) {
        precondition(ids.count == batchSize * length && attentionMask.count == ids.count,
                     "EncoderInput: \(ids.count) ids and \(attentionMask.count) mask entries for batch \(batchSize) x \(length)")
        self.init(ids: ids, attentionMask: attentionMask, tokenTypeIDs: tokenTypeIDs,
                  exampleLengths: [Int](repeating: length, count: batchSize), isPacked: false)
    }

    /// A right-padded batch of id sequences with its attention mask.
    public init(padding sequences: [[Int]], padID: Int) {
        let length = sequences.map(\.count).max() ?? 0
        var ids: [Int] = [], mask: [Int] = []
        for sequence in sequences {
            ids += sequence + [Int](repeating: padID, count: length - sequence.count)
            mask += [Int](repeating: 1, count: sequence.count) + [Int](repeating: 0, count: length - sequence.count)
        }
        self.init(ids: ids, attentionMask: mask, batchSize: sequences.count, length: length)
    }

    /// A packed batch: the sequences back to back, no padding.
    /// - Precondition: no sequence is empty.
    public init(packing sequences: [[Int]]) {
        precondition(sequences.allSatisfy { !$0.isEmpty }, "EncoderInput: a packed batch cannot hold an empty sequence")
        let ids = Array(sequences.joined())
        self.init(ids: ids, attentionMask: [Int](repeating: 1, count: ids.count), tokenTypeIDs: nil,
                  exampleLengths: sequences.map(\.count), isPacked: true)
    }

    private init(ids: [Int], attentionMask: [Int], tokenTypeIDs: [Int]?, exampleLengths: [Int], isPacked: Bool) {
        (self.ids, self.attentionMask, self.tokenTypeIDs) = (ids, attentionMask, tokenTypeIDs)
        (self.exampleLengths, self.isPacked) = (exampleLengths, isPacked)
        batchSize = exampleLengths.count
        length = exampleLengths.max() ?? 0
        var firstRows: [Int] = [], first = 0
        for length in exampleLengths {
            firstRows.append(first)
            first += length
        }
        self.firstRows = firstRows
    }

    /// The rows of example `example`.
    public func rows(of example: Int) -> Range<Int> { firstRows[example]..<(firstRows[example] + exampleLengths[example]) }

    /// Examples `examples` as a batch of their own (padded or packed as this one), with its rows of `ids`.
    public func examples(_ examples: Range<Int>) -> (input: EncoderInput, rows: Range<Int>) {
        let rows = examples.isEmpty ? 0..<0 : self.rows(of: examples.lowerBound).lowerBound..<self.rows(of: examples.upperBound - 1).upperBound
        let input = EncoderInput(ids: Array(ids[rows]), attentionMask: Array(attentionMask[rows]),
                                 tokenTypeIDs: tokenTypeIDs.map { Array($0[rows]) },
                                 exampleLengths: Array(exampleLengths[examples]), isPacked: isPacked)
        return (input, rows)
    }
}

/// Word + position + token-type embeddings followed by LayerNorm and dropout.
public final class Embeddings: Module {
    /// The word (`[vocab_size, hidden]`), position (`[max_position_embeddings, hidden]`) and
    /// token-type (`[type_vocab_size, hidden]`) embedding tables, summed per token.
    public let word: Embedding, position: Embedding, tokenType: Embedding
    /// Normalizes the summed embeddings over the hidden axis (epsilon `layer_norm_eps`).
    public let layerNorm: LayerNorm
    let configuration: EncoderConfiguration

    init(_ c: EncoderConfiguration) {
        configuration = c
        word = Embedding(table: Tensor(zeros: [c.vocabularySize, c.hiddenSize]))
        position = Embedding(table: Tensor(zeros: [c.maxPositions, c.hiddenSize]))
        tokenType = Embedding(table: Tensor(zeros: [c.typeVocabularySize, c.hiddenSize]))
        layerNorm = LayerNorm(size: c.hiddenSize, epsilon: c.layerNormEpsilon)
    }

    /// `word_embeddings`, `position_embeddings`, `token_type_embeddings` and `LayerNorm`, as in Hugging Face.
    public var children: [(name: String, module: any Module)] {
        [("word_embeddings", word), ("position_embeddings", position),
         ("token_type_embeddings", tokenType), ("LayerNorm", layerNorm)]
    }

    /// Position ids: `0..<length` for BERT; for XLM-R, `pad + 1 + i` counting
    /// only real tokens, and `pad` at padding (as Hugging Face computes them).
    public func positionIDs(for input: EncoderInput) -> [Int] {
        guard configuration.offsetsPositions else { return input.exampleLengths.flatMap { 0..<$0 } }
        let pad = configuration.padTokenID
        var positions = [Int](repeating: pad, count: input.ids.count)
        for example in 0..<input.batchSize {
            var seen = 0
            for row in input.rows(of: example) where input.ids[row] != pad {
                seen += 1
                positions[row] = pad + seen
            }
        }
        return positions
    }

    /// `[rows, hidden]` embeddings.
    public func callAsFunction(_ input: EncoderInput, context: ForwardContext) -> Variable {
        let tape = context.tape
        let types = input.tokenTypeIDs ?? [Int](repeating: 0, count: input.ids.count)
        let sum = word(input.ids, tape: tape) + position(positionIDs(for: input), tape: tape) + tokenType(types, tape: tape)
        let normalized = layerNorm(sum, tape: tape)
        let adapted = context.adapters?.embeddings(normalized, context: context) ?? normalized
        return context.dropout(adapted, probability: configuration.hiddenDropout)
    }
}

/// `LayerNorm(dropout(dense(h)) + residual)`: the output of an attention or
/// feed-forward sub-layer (`attention.output` and `output` in BERT), where
/// bottleneck adapters attach.
public final class SubLayerOutput: Module {
    /// Projects the sub-layer's result back to `hidden` (from `hidden` after attention, from
    /// `intermediate_size` after the feed-forward layer).
    public let dense: Linear
    /// Normalizes the projection plus the residual (epsilon `layer_norm_eps`).
    public let layerNorm: LayerNorm
    let dropout: Float
    let kind: SubLayer

    init(_ kind: SubLayer, inputSize: Int, _ c: EncoderConfiguration) {
        dense = Linear(weight: Tensor(zeros: [c.hiddenSize, inputSize]), bias: Tensor(zeros: [c.hiddenSize]))
        layerNorm = LayerNorm(size: c.hiddenSize, epsilon: c.layerNormEpsilon)
        dropout = c.hiddenDropout
        self.kind = kind
    }

    /// `dense` and `LayerNorm`, as in Hugging Face.
    public var children: [(name: String, module: any Module)] { [("dense", dense), ("LayerNorm", layerNorm)] }

    /// `LayerNorm(residual + dropout(dense(x)))` in layer `layer`, with the adapters at `dense` and at this sub-layer applied.
    public func callAsFunction(_ x: Variable, residual: Variable, layer: Int, context: ForwardContext) -> Variable {
        let slot: LinearSlot = kind == .attention ? .attentionOutput : .ffnOut
        let h = context.dropout(context.apply(dense, slot, layer: layer, to: x), probability: dropout)
        guard let adapters = context.adapters else { return layerNorm(h + residual, tape: context.tape) }
        return adapters.subLayer(kind, layer: layer, output: h, residual: residual, layerNorm: layerNorm, context: context)
    }
}

/// Multi-head self-attention projections (`attention.self`).
public final class SelfAttention: Module {
    /// The query, key and value projections, each `hidden` → `hidden` (all heads side by side,
    /// `num_attention_heads` slices of `hidden / num_attention_heads`).
    public let query: Linear, key: Linear, value: Linear
    let headCount: Int, dropout: Float

    init(_ c: EncoderConfiguration) {
        func projection() -> Linear {
            Linear(weight: Tensor(zeros: [c.hiddenSize, c.hiddenSize]), bias: Tensor(zeros: [c.hiddenSize]))
        }
        (query, key, value) = (projection(), projection(), projection())
        headCount = c.headCount
        dropout = c.attentionDropout
    }

    /// `query`, `key` and `value`, as in Hugging Face.
    public var children: [(name: String, module: any Module)] { [("query", query), ("key", key), ("value", value)] }

    /// Attends over `x` (`[rows, hidden]`) within each example, example `b`
    /// holding `lengths[b]` consecutive rows; `attentionMask` has an entry per
    /// row, 1 for real tokens and 0 for padding. Returns the context vectors,
    /// `[rows, hidden]`.
    public func callAsFunction(_ x: Variable, lengths: [Int], attentionMask: [Int],
                               layer: Int, context: ForwardContext) -> Variable {
        let headSize = x.shape[1] / headCount
        let q = context.apply(query, .query, layer: layer, to: x)
        let k = context.apply(key, .key, layer: layer, to: x)
        let v = context.apply(value, .value, layer: layer, to: x)
        let mask = context.dropoutMask(count: headCount * lengths.reduce(0) { $0 + $1 * $1 }, probability: dropout)
        return Variable.attention(query: q, key: k, value: v, lengths: lengths, headCount: headCount,
                                  keyMask: attentionMask, scale: 1 / Float(headSize).squareRoot(), dropout: mask)
    }
}

/// One post-LayerNorm transformer block.
public final class EncoderLayer: Module {
    /// The query, key and value projections and the attention over them (`attention.self`).
    public let selfAttention: SelfAttention
    /// The attention output projection, residual and LayerNorm (`attention.output`).
    public let attentionOutput: SubLayerOutput
    /// The feed-forward expansion `hidden` → `intermediate_size`, followed by GELU (`intermediate.dense`).
    public let intermediate: Linear
    /// The feed-forward projection `intermediate_size` → `hidden`, residual and LayerNorm (`output`).
    public let output: SubLayerOutput

    /// The block's position in the encoder (0 is nearest the embeddings).
    public let index: Int

    init(_ c: EncoderConfiguration, index: Int) {
        selfAttention = SelfAttention(c)
        attentionOutput = SubLayerOutput(.attention, inputSize: c.hiddenSize, c)
        intermediate = Linear(weight: Tensor(zeros: [c.intermediateSize, c.hiddenSize]), bias: Tensor(zeros: [c.intermediateSize]))
        output = SubLayerOutput(.feedForward, inputSize: c.intermediateSize, c)
        self.index = index
    }

    /// `attention.self`, `attention.output`, `intermediate.dense` and `output`, as in Hugging Face.
    public var children: [(name: String, module: any Module)] {
        [("attention.self", selfAttention), ("attention.output", attentionOutput),
         ("intermediate.dense", intermediate), ("output", output)]
    }

    /// The layer's output for token rows `x`, example `b` holding `lengths[b]` consecutive rows;
    /// `attentionMask` holds 1 for real tokens, 0 for padding.
    public func callAsFunction(_ x: Variable, lengths: [Int], attentionMask: [Int], context: ForwardContext) -> Variable {
        let attended = selfAttention(x, lengths: lengths, attentionMask: attentionMask, layer: index, context: context)
        let afterAttention = attentionOutput(attended, residual: x, layer: index, context: context)
        let expanded = context.apply(intermediate, .ffnIn, layer: index, to: afterAttention).gelu()
        return output(expanded, residual: afterAttention, layer: index, context: context)
    }
}

/// A BERT / XLM-R encoder with Hugging Face parameter names
/// (`embeddings.*`, `encoder.layer.N.*`, optional `pooler.dense.*`).
public final class TransformerEncoder: Module {
    /// The shape the encoder was built with (Hugging Face `config.json`).
    public let configuration: EncoderConfiguration
    /// The embedding layer (`embeddings.*`).
    public let embeddings: Embeddings
    /// The `num_hidden_layers` transformer blocks (`encoder.layer.N.*`), nearest the embeddings first.
    public let layers: ModuleList<EncoderLayer>
    /// BERT's pooler (`tanh(dense(h[CLS]))`), when the checkpoint has one.
    public let pooler: Linear?

    /// An encoder of the given shape with zero weights, to be loaded by name.
    public init(configuration: EncoderConfiguration, withPooler: Bool = false) {
        self.configuration = configuration
        embeddings = Embeddings(configuration)
        layers = ModuleList((0..<configuration.layerCount).map { EncoderLayer(configuration, index: $0) })
        pooler = withPooler
            ? Linear(weight: Tensor(zeros: [configuration.hiddenSize, configuration.hiddenSize]), bias: Tensor(zeros: [configuration.hiddenSize]))
            : nil
    }

    /// `embeddings`, `encoder.layer` and, when present, `pooler.dense`, as in Hugging Face.
    public var children: [(name: String, module: any Module)] {
        [("embeddings", embeddings), ("encoder.layer", layers)] + (pooler.map { [("pooler.dense", $0)] } ?? [])
    }

    /// The final hidden states, `[rows, hidden]`.
    public func callAsFunction(_ input: EncoderInput, context: ForwardContext) -> Variable {
        hiddenStates(input, context: context).last!
    }

    /// The embedding output followed by every layer's output, each `[rows, hidden]`.
    public func hiddenStates(_ input: EncoderInput, context: ForwardContext) -> [Variable] {
        context.exampleLengths = input.exampleLengths
        var states = [embeddings(input, context: context)]
        for layer in layers.elements {
            states.append(context.layer(states.last!) { x, context in
                layer(x, lengths: input.exampleLengths, attentionMask: input.attentionMask, context: context)
            })
        }
        return states
    }

    /// BERT's pooled output: `tanh(pooler(h[CLS]))`, `[batch, hidden]`.
    public func pooled(_ hidden: Variable, input: EncoderInput, context: ForwardContext) -> Variable? {
        guard let pooler else { return nil }
        return pooler(firstTokens(hidden, input: input), tape: context.tape).tanh()
    }
}

/// Each example's first hidden state (`[CLS]` / `<s>`): `[batch, hidden]`.
public func firstTokens(_ hidden: Variable, input: EncoderInput) -> Variable {
    Variable.gatherRows(hidden, input.firstRows)
}

/// Mean of the hidden states over real tokens: `[batch, hidden]`.
public func meanPool(_ hidden: Variable, input: EncoderInput) -> Variable {
    var weights = Tensor(zeros: [input.batchSize, input.ids.count])
    for example in 0..<input.batchSize {
        let rows = input.rows(of: example)
        let real = input.attentionMask[rows].reduce(0, +)
        for row in rows where input.attentionMask[row] != 0 { weights.scalars[example * input.ids.count + row] = 1 / Float(max(real, 1)) }
    }
    return Variable.matmul(Variable(weights), hidden)
}
