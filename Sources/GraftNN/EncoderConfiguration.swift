import Foundation

/// The shape of a BERT-family encoder, read from a Hugging Face `config.json`.
///
/// Keys use Hugging Face's names; missing optional keys take BERT's defaults.
public struct EncoderConfiguration: Codable, Sendable, Equatable {
    /// `"bert"` or `"xlm-roberta"` (the latter offsets position ids past the padding index).
    public var modelType: String
    /// Rows of the word-embedding table (`vocab_size`; required).
    public var vocabularySize: Int
    /// Width of every hidden state, `[rows, hidden]` (`hidden_size`; required).
    public var hiddenSize: Int
    /// Number of transformer blocks (`num_hidden_layers`; required).
    public var layerCount: Int
    /// Attention heads per block; must divide `hiddenSize` (`num_attention_heads`; required).
    public var headCount: Int
    /// Width of the feed-forward layer inside each block (`intermediate_size`; required).
    public var intermediateSize: Int
    /// Rows of the position-embedding table (`max_position_embeddings`; default 512); with XLM-R's
    /// offset positions an input holds at most `maxPositions - padTokenID - 1` tokens.
    public var maxPositions: Int
    /// Rows of the token-type (segment) embedding table (`type_vocab_size`; default 2).
    public var typeVocabularySize: Int
    /// The epsilon added to the variance in every LayerNorm (`layer_norm_eps`; default `1e-12`).
    public var layerNormEpsilon: Float
    /// The padding token's id, which the tokenizer must share (`pad_token_id`; default 0).
    public var padTokenID: Int
    /// Dropout probability after the embeddings and after each sub-layer's dense projection
    /// (`hidden_dropout_prob`; default 0.1).
    public var hiddenDropout: Float
    /// Dropout probability on the attention weights (`attention_probs_dropout_prob`; default 0.1).
    public var attentionDropout: Float
    /// The feed-forward activation (`hidden_act`; default `gelu`, the only value `validate()` accepts).
    public var hiddenActivation: String

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type", vocabularySize = "vocab_size", hiddenSize = "hidden_size"
        case layerCount = "num_hidden_layers", headCount = "num_attention_heads"
        case intermediateSize = "intermediate_size", maxPositions = "max_position_embeddings"
        case typeVocabularySize = "type_vocab_size", layerNormEpsilon = "layer_norm_eps"
        case padTokenID = "pad_token_id", hiddenDropout = "hidden_dropout_prob"
        case attentionDropout = "attention_probs_dropout_prob", hiddenActivation = "hidden_act"
    }

    /// A configuration whose optional settings default to BERT's: 512 positions, 2 token types,
    /// LayerNorm epsilon `1e-12`, pad id 0, dropout 0.1 and GELU.
    public init(modelType: String = "bert", vocabularySize: Int, hiddenSize: Int, layerCount: Int, headCount: Int,
                intermediateSize: Int, maxPositions: Int = 512, typeVocabularySize: Int = 2,
                layerNormEpsilon: Float = 1e-12, padTokenID: Int = 0, hiddenDropout: Float = 0.1,
                attentionDropout: Float = 0.1, hiddenActivation: String = "gelu") {
        self.modelType = modelType
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabularySize = typeVocabularySize
        self.layerNormEpsilon = layerNormEpsilon
        self.padTokenID = padTokenID
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.hiddenActivation = hiddenActivation
    }

    /// Decodes a Hugging Face `config.json`, applying BERT's defaults to absent optional keys, then validates it.
    /// - Throws: `DecodingError` if a required key is missing or a value has the wrong type; `ConfigurationError` if `validate()` fails.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            modelType: try c.decodeIfPresent(String.self, forKey: .modelType) ?? "bert",
            vocabularySize: try c.decode(Int.self, forKey: .vocabularySize),
            hiddenSize: try c.decode(Int.self, forKey: .hiddenSize),
            layerCount: try c.decode(Int.self, forKey: .layerCount),
            headCount: try c.decode(Int.self, forKey: .headCount),
            intermediateSize: try c.decode(Int.self, forKey: .intermediateSize),
            maxPositions: try c.decodeIfPresent(Int.self, forKey: .maxPositions) ?? 512,
            typeVocabularySize: try c.decodeIfPresent(Int.self, forKey: .typeVocabularySize) ?? 2,
            layerNormEpsilon: try c.decodeIfPresent(Float.self, forKey: .layerNormEpsilon) ?? 1e-12,
            padTokenID: try c.decodeIfPresent(Int.self, forKey: .padTokenID) ?? 0,
            hiddenDropout: try c.decodeIfPresent(Float.self, forKey: .hiddenDropout) ?? 0.1,
            attentionDropout: try c.decodeIfPresent(Float.self, forKey: .attentionDropout) ?? 0.1,
            hiddenActivation: try c.decodeIfPresent(String.self, forKey: .hiddenActivation) ?? "gelu")
        try validate()
    }

    /// Size of one attention head.
    public var headSize: Int { hiddenSize / headCount }

    /// Whether position ids start past the padding index (XLM-R / RoBERTa).
    public var offsetsPositions: Bool { modelType == "xlm-roberta" || modelType == "roberta" }

    /// Throws if the sizes are inconsistent or unsupported.
    public func validate() throws {
        guard ["bert", "xlm-roberta", "roberta"].contains(modelType) else {
            throw ConfigurationError("unknown model_type \"\(modelType)\": expected bert, xlm-roberta or roberta")
        }
        guard [vocabularySize, hiddenSize, layerCount, headCount, intermediateSize, maxPositions].allSatisfy({ $0 > 0 }) else {
            throw ConfigurationError("sizes must be positive: \(self)")
        }
        guard hiddenSize % headCount == 0 else {
            throw ConfigurationError("hidden_size \(hiddenSize) is not divisible by num_attention_heads \(headCount)")
        }
        guard hiddenActivation == "gelu" else {
            throw ConfigurationError("unsupported hidden_act \"\(hiddenActivation)\": expected gelu")
        }
        for (key, value, limit) in [("vocab_size", vocabularySize, Self.limits.vocabularySize), ("hidden_size", hiddenSize, Self.limits.hiddenSize),
                                    ("num_hidden_layers", layerCount, Self.limits.layerCount),
                                    ("intermediate_size", intermediateSize, Self.limits.intermediateSize),
                                    ("max_position_embeddings", maxPositions, Self.limits.maxPositions),
                                    ("type_vocab_size", typeVocabularySize, Self.limits.typeVocabularySize)] {
            guard (1...limit).contains(value) else { throw ConfigurationError("\(key) is \(value); Graft accepts 1...\(limit)") }
        }
        guard layerNormEpsilon.isFinite, layerNormEpsilon > 0, layerNormEpsilon < 1 else {
            throw ConfigurationError("layer_norm_eps is \(layerNormEpsilon); expected a value in (0, 1)")
        }
        for (key, value) in [("hidden_dropout_prob", hiddenDropout), ("attention_probs_dropout_prob", attentionDropout)]
        where !(value >= 0 && value < 1) {
            throw ConfigurationError("\(key) is \(value); expected a probability in [0, 1)")
        }
        guard (0..<vocabularySize).contains(padTokenID) else {
            throw ConfigurationError("pad_token_id \(padTokenID) is outside the vocabulary 0..<\(vocabularySize)")
        }
        let bytes = 4 * Double(parameterCount())
        guard bytes <= Double(ProcessInfo.processInfo.physicalMemory) else {
            throw ConfigurationError("the model would hold \(parameterCount()) parameters (\(Int(bytes / 1e9)) GB of float32), "
                                     + "more than this machine's memory (\(ProcessInfo.processInfo.physicalMemory / 1_000_000_000) GB)")
        }
    }

    /// The largest sizes Graft accepts, far above any model of the BERT / XLM-R family: a file
    /// claiming more is corrupt or hostile, and is refused before anything is allocated.
    public static let limits = (vocabularySize: 1 << 24, hiddenSize: 1 << 15, layerCount: 256, intermediateSize: 1 << 17,
                                maxPositions: 1 << 17, typeVocabularySize: 1 << 10)

    /// The number of parameters of an encoder of this shape (embeddings, every
    /// layer and, if `withPooler`, BERT's pooler), computed without allocating it;
    /// with sizes within `limits` it cannot overflow.
    public func parameterCount(withPooler: Bool = false) -> Int {
        let (d, f) = (hiddenSize, intermediateSize)
        let embeddings = (vocabularySize + maxPositions + typeVocabularySize) * d + 2 * d
        let layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * 2 * d
        return embeddings + layerCount * layer + (withPooler ? d * d + d : 0)
    }
}

/// An invalid or unsupported model configuration.
public struct ConfigurationError: Error, CustomStringConvertible {
    /// `invalid configuration: ` followed by what is wrong (usually naming the `config.json` key).
    public let description: String
    /// An error whose description is `invalid configuration: ` followed by `description`.
    public init(_ description: String) { self.description = "invalid configuration: " + description }
}
