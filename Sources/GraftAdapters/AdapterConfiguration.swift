import GraftNN

/// The configuration of any adapter method, as stored in checkpoints:
/// `{"method": "seq_bn", ...the method's settings}`.
public enum AdapterConfiguration: Codable, Sendable, Equatable {
    case bottleneck(BottleneckConfiguration)
    case lora(LoRAConfiguration)
    case mos(MoSConfiguration)

    /// The method names `adapt` accepts, with their reference defaults.
    public static let methods: [String: AdapterConfiguration] = [
        "seq_bn": .bottleneck(.seqBn), "double_seq_bn": .bottleneck(.doubleSeqBn), "par_bn": .bottleneck(.parBn),
        "seq_bn_inv": .bottleneck(.seqBnInv), "double_seq_bn_inv": .bottleneck(.doubleSeqBnInv),
        "lora": .lora(LoRAConfiguration()), "mos": .mos(MoSConfiguration()),
    ]

    /// The defaults of method `name`.
    public init(method name: String) throws {
        guard let configuration = AdapterConfiguration.methods[name] else {
            throw ConfigurationError("unknown adapter method \"\(name)\"; expected one of \(AdapterConfiguration.methods.keys.sorted().joined(separator: ", "))")
        }
        self = configuration
    }

    /// The method's name.
    public var method: String {
        switch self {
        case .bottleneck(let c): c.method
        case .lora: "lora"
        case .mos: "mos"
        }
    }

    /// Throws `ConfigurationError` if these settings cannot make an adapter for a model of the given shape.
    public func validate(model: EncoderConfiguration) throws {
        switch self {
        case .bottleneck(let c): try c.validate(model: model)
        case .lora(let c): try c.validate()
        case .mos(let c): try c.validate(model: model)
        }
    }

    /// A freshly initialised adapter of this configuration for a model of the given shape.
    /// - Throws: `ConfigurationError` if the settings do not fit the model.
    public func makeAdapter(model: EncoderConfiguration, seed: UInt64) throws -> any Adapter {
        try validate(model: model)
        return switch self {
        case .bottleneck(let c): BottleneckAdapter(c, model: model, seed: seed)
        case .lora(let c): LoRAAdapter(c, model: model, seed: seed)
        case .mos(let c): try MoSAdapter(c, model: model, seed: seed)
        }
    }

    /// The number of trainable parameters `makeAdapter` would allocate for a model of this shape.
    public func parameterCount(model: EncoderConfiguration) -> Int {
        switch self {
        case .bottleneck(let c): c.parameterCount(model: model)
        case .lora(let c): c.parameterCount(model: model)
        case .mos(let c): c.parameterCount(model: model)
        }
    }

    private enum Key: String, CodingKey { case method }

    public init(from decoder: any Decoder) throws {
        let method = try decoder.container(keyedBy: Key.self).decode(String.self, forKey: .method)
        switch method {
        case "lora": self = .lora(try LoRAConfiguration(from: decoder))
        case "mos": self = .mos(try MoSConfiguration(from: decoder))
        case _ where AdapterConfiguration.methods[method] != nil: self = .bottleneck(try BottleneckConfiguration(from: decoder))
        default: throw ConfigurationError("unknown adapter method \"\(method)\" in a stored configuration")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(method, forKey: .method)
        switch self {
        case .bottleneck(let c): try c.encode(to: encoder)
        case .lora(let c): try c.encode(to: encoder)
        case .mos(let c): try c.encode(to: encoder)
        }
    }
}

extension EncoderConfiguration {
    /// The number of parameters of an encoder of this shape (embeddings, every
    /// layer and, if `withPooler`, BERT's pooler), computed without allocating it.
    public func parameterCount(withPooler: Bool = false) -> Int {
        let (d, f) = (hiddenSize, intermediateSize)
        let embeddings = (vocabularySize + maxPositions + typeVocabularySize) * d + 2 * d
        let layer = 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * 2 * d
        return embeddings + layerCount * layer + (withPooler ? d * d + d : 0)
    }
}
