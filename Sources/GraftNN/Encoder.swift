import GraftAutodiff
import GraftTensor

/// A padded batch of token ids for the encoder.
public struct EncoderInput: Sendable {
    /// `batchSize * length` ids, row-major, padded with the pad id.
    public var ids: [Int]
    /// 1 for real tokens, 0 for padding; same layout as `ids`.
    public var attentionMask: [Int]
    /// Token types (segment ids), or all zeros when `nil`.
    public var tokenTypeIDs: [Int]?
    public var batchSize: Int
    public var length: Int

    /// A batch of `batchSize` rows of `length` tokens.
    /// - Precondition: `ids` and `attentionMask` each hold `batchSize * length` entries.
    public init(ids: [Int], attentionMask: [Int], tokenTypeIDs: [Int]? = nil, batchSize: Int, length: Int) {
        precondition(ids.count == batchSize * length && attentionMask.count == ids.count,
                     "EncoderInput: \(ids.count) ids and \(attentionMask.count) mask entries for batch \(batchSize) x \(length)")
        self.ids = ids
        self.attentionMask = attentionMask
        self.tokenTypeIDs = tokenTypeIDs
        self.batchSize = batchSize
        self.length = length
    }
}

/// Word + position + token-type embeddings followed by LayerNorm and dropout.
public final class Embeddings: Module {
    public let word: Embedding, position: Embedding, tokenType: Embedding
    public let layerNorm: LayerNorm
    let configuration: EncoderConfiguration

    init(_ c: EncoderConfiguration) {
        configuration = c
        word = Embedding(table: Tensor(zeros: [c.vocabularySize, c.hiddenSize]))
        position = Embedding(table: Tensor(zeros: [c.maxPositions, c.hiddenSize]))
        tokenType = Embedding(table: Tensor(zeros: [c.typeVocabularySize, c.hiddenSize]))
        layerNorm = LayerNorm(size: c.hiddenSize, epsilon: c.layerNormEpsilon)
    }

    public var children: [(name: String, module: any Module)] {
        [("word_embeddings", word), ("position_embeddings", position),
         ("token_type_embeddings", tokenType), ("LayerNorm", layerNorm)]
    }

    /// Position ids: `0..<length` for BERT; for XLM-R, `pad + 1 + i` counting
    /// only real tokens, and `pad` at padding (as Hugging Face computes them).
    public func positionIDs(for input: EncoderInput) -> [Int] {
        guard configuration.offsetsPositions else {
            return (0..<input.batchSize).flatMap { _ in 0..<input.length }
        }
        let pad = configuration.padTokenID
        var positions = [Int](repeating: pad, count: input.ids.count)
        for row in 0..<input.batchSize {
            var seen = 0
            for t in 0..<input.length where input.ids[row * input.length + t] != pad {
                seen += 1
                positions[row * input.length + t] = pad + seen
            }
        }
        return positions
    }

    /// `[batch * length, hidden]` embeddings.
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
    public let dense: Linear
    public let layerNorm: LayerNorm
    let dropout: Float
    let kind: SubLayer

    init(_ kind: SubLayer, inputSize: Int, _ c: EncoderConfiguration) {
        dense = Linear(weight: Tensor(zeros: [c.hiddenSize, inputSize]), bias: Tensor(zeros: [c.hiddenSize]))
        layerNorm = LayerNorm(size: c.hiddenSize, epsilon: c.layerNormEpsilon)
        dropout = c.hiddenDropout
        self.kind = kind
    }

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

    public var children: [(name: String, module: any Module)] { [("query", query), ("key", key), ("value", value)] }

    /// Attends over `x` (`[batch * length, hidden]`); `attentionMask` has
    /// `batch * length` entries, 1 for real tokens and 0 for padding.
    /// Returns the context vectors, `[batch * length, hidden]`.
    public func callAsFunction(_ x: Variable, batchSize: Int, length: Int, attentionMask: [Int],
                               layer: Int, context: ForwardContext) -> Variable {
        let headSize = x.shape[1] / headCount
        let q = context.apply(query, .query, layer: layer, to: x)
        let k = context.apply(key, .key, layer: layer, to: x)
        let v = context.apply(value, .value, layer: layer, to: x)
        let mask = context.dropoutMask(count: batchSize * headCount * length * length, probability: dropout)
        return Variable.attention(query: q, key: k, value: v, batchSize: batchSize, length: length, headCount: headCount,
                                  keyMask: attentionMask, scale: 1 / Float(headSize).squareRoot(), dropout: mask)
    }
}

/// One post-LayerNorm transformer block.
public final class EncoderLayer: Module {
    public let selfAttention: SelfAttention
    public let attentionOutput: SubLayerOutput
    public let intermediate: Linear
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

    public var children: [(name: String, module: any Module)] {
        [("attention.self", selfAttention), ("attention.output", attentionOutput),
         ("intermediate.dense", intermediate), ("output", output)]
    }

    /// The layer's output for `batchSize x length` token rows `x`; `attentionMask` holds 1 for real tokens, 0 for padding.
    public func callAsFunction(_ x: Variable, batchSize: Int, length: Int, attentionMask: [Int],
                               context: ForwardContext) -> Variable {
        let attended = selfAttention(x, batchSize: batchSize, length: length, attentionMask: attentionMask,
                                     layer: index, context: context)
        let afterAttention = attentionOutput(attended, residual: x, layer: index, context: context)
        let expanded = context.apply(intermediate, .ffnIn, layer: index, to: afterAttention).gelu()
        return output(expanded, residual: afterAttention, layer: index, context: context)
    }
}

/// A BERT / XLM-R encoder with Hugging Face parameter names
/// (`embeddings.*`, `encoder.layer.N.*`, optional `pooler.dense.*`).
public final class TransformerEncoder: Module {
    public let configuration: EncoderConfiguration
    public let embeddings: Embeddings
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

    public var children: [(name: String, module: any Module)] {
        [("embeddings", embeddings), ("encoder.layer", layers)] + (pooler.map { [("pooler.dense", $0)] } ?? [])
    }

    /// The final hidden states, `[batch * length, hidden]`.
    public func callAsFunction(_ input: EncoderInput, context: ForwardContext) -> Variable {
        hiddenStates(input, context: context).last!
    }

    /// The embedding output followed by every layer's output, each `[batch * length, hidden]`.
    public func hiddenStates(_ input: EncoderInput, context: ForwardContext) -> [Variable] {
        context.batchSize = input.batchSize
        var states = [embeddings(input, context: context)]
        for layer in layers.elements {
            states.append(context.layer(states.last!) { x, context in
                layer(x, batchSize: input.batchSize, length: input.length, attentionMask: input.attentionMask, context: context)
            })
        }
        return states
    }

    /// BERT's pooled output: `tanh(pooler(h[CLS]))`, `[batch, hidden]`.
    public func pooled(_ hidden: Variable, input: EncoderInput, context: ForwardContext) -> Variable? {
        guard let pooler else { return nil }
        let first = hidden.reshaped([input.batchSize, input.length, -1]).slice(alongAxis: 1, 0..<1).reshaped([input.batchSize, -1])
        return pooler(first, tape: context.tape).tanh()
    }
}

/// Mean of the hidden states over real tokens: `[batch, hidden]`.
public func meanPool(_ hidden: Variable, input: EncoderInput) -> Variable {
    let weights = Tensor(shape: [input.batchSize, input.length, 1], generating: { i in
        let row = i / input.length
        let real = input.attentionMask[(row * input.length)..<((row + 1) * input.length)].reduce(0, +)
        return input.attentionMask[i] == 0 ? 0 : 1 / Float(Swift.max(real, 1))
    })
    return (hidden.reshaped([input.batchSize, input.length, -1]) * Variable(weights)).sum(alongAxis: 1)
}
