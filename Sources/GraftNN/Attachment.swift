import GraftAutodiff

/// A linear layer of an encoder block that an adapter can modify (LoRA, MoS).
public enum LinearSlot: String, Codable, Sendable, CaseIterable {
    /// The self-attention projections `attention.self.query`, `.key` and `.value`.
    case query, key, value
    /// `attention.output.dense`.
    case attentionOutput = "attention_output"
    /// `intermediate.dense` (the first feed-forward layer).
    case ffnIn = "ffn_in"
    /// `output.dense` (the second feed-forward layer).
    case ffnOut = "ffn_out"

    /// The Hugging Face module path of this slot inside `encoder.layer.N`.
    public var modulePath: String {
        switch self {
        case .query: "attention.self.query"
        case .key: "attention.self.key"
        case .value: "attention.self.value"
        case .attentionOutput: "attention.output.dense"
        case .ffnIn: "intermediate.dense"
        case .ffnOut: "output.dense"
        }
    }
}

/// The two residual sub-layers of an encoder block, where bottleneck adapters sit.
public enum SubLayer: String, Codable, Sendable, CaseIterable {
    /// After self-attention (`attention.output`).
    case attention
    /// After the feed-forward block (`output`).
    case feedForward = "feed_forward"
}

/// The adapters of a forward pass. The encoder calls these methods at its
/// named attachment points; each returns its input unchanged where nothing
/// is attached.
public protocol EncoderAdapters: AnyObject {
    /// The output of linear slot `slot` of block `layer`, given its input and
    /// the frozen base layer's output.
    func linear(_ slot: LinearSlot, layer: Int, input: Variable, base: Variable, context: ForwardContext) -> Variable
    /// The output of a residual sub-layer: `output` (`h`) is the sub-layer's dense output
    /// (after dropout), `residual` its input, `layerNorm` its pretrained LayerNorm.
    /// Without adapters this is `layerNorm(h + residual)`.
    func subLayer(_ subLayer: SubLayer, layer: Int, output h: Variable, residual: Variable, layerNorm: LayerNorm,
                  context: ForwardContext) -> Variable
    /// The token embeddings after the embedding LayerNorm (invertible adapters act here).
    func embeddings(_ embeddings: Variable, context: ForwardContext) -> Variable
    /// The masked-LM head's transformed states before the vocabulary decoder
    /// (the inverse of an invertible adapter acts here).
    func beforeDecoder(_ states: Variable, context: ForwardContext) -> Variable
}
