import GraftNN

/// The settings of one adapter method: what a checkpoint stores under
/// `{"method": NAME, ...}` and what makes a fresh adapter.
///
/// To add a method, write a settings type conforming to this protocol next to
/// its adapter and add its defaults to ``AdapterMethods/all``: parameter counts,
/// `adapt train / mlm / params`, checkpoints and composition then know it.
public protocol AdapterMethodSettings: Codable, Sendable, Equatable {
    /// The method's name (`seq_bn`, `lora`, ...), as in configuration files and `--method`.
    var method: String { get }
    /// The command-line options these settings take.
    static var options: Set<AdapterOption> { get }
    /// These settings with the options given on the command line applied.
    /// - Throws: `ConfigurationError` for a value the method cannot take.
    func applying(_ overrides: AdapterOverrides) throws -> Self
    /// Throws `ConfigurationError` if these settings cannot make an adapter for a model of this shape.
    func validate(model: EncoderConfiguration) throws
    /// A freshly initialised adapter for a model of this shape; call `validate(model:)` first.
    func makeAdapter(model: EncoderConfiguration, seed: UInt64) throws -> any Adapter
    /// The number of trainable scalars `makeAdapter` allocates, computed without allocating them.
    func parameterCount(model: EncoderConfiguration) -> Int
}

extension AdapterMethodSettings {
    func isEqual(to other: any AdapterMethodSettings) -> Bool { (other as? Self) == self }
}

/// Every adapter method Graft knows, with its reference defaults (the registry).
public enum AdapterMethods {
    /// The defaults of every method; each method's name is its `method`.
    public static let all: [any AdapterMethodSettings] = [
        BottleneckConfiguration.seqBn, BottleneckConfiguration.doubleSeqBn, BottleneckConfiguration.parBn,
        BottleneckConfiguration.seqBnInv, BottleneckConfiguration.doubleSeqBnInv,
        LoRAConfiguration(), MoSConfiguration(), UniPTConfiguration(),
    ]

    private static let byName = Dictionary(uniqueKeysWithValues: all.map { ($0.method, $0) })

    /// The method names, sorted.
    public static var names: [String] { byName.keys.sorted() }

    /// The defaults of method `name`.
    /// - Throws: `ConfigurationError` for a name that is not registered.
    public static func defaults(_ name: String) throws -> any AdapterMethodSettings {
        guard let settings = byName[name] else {
            throw ConfigurationError("unknown adapter method \"\(name)\"; expected one of \(names.joined(separator: ", "))")
        }
        return settings
    }

    /// The names of the methods that take `option`, sorted.
    public static func methods(taking option: AdapterOption) -> [String] {
        all.filter { type(of: $0).options.contains(option) }.map(\.method).sorted()
    }
}

/// A setting of an adapter method that the command line can give (`--rank`, ...).
public enum AdapterOption: String, CaseIterable, Sendable {
    /// `--reduction-factor` (bottleneck methods, `unipt`), `--rank`, `--alpha`, `--targets` (LoRA, MoS), `--leave-out`.
    case reductionFactor = "reduction-factor", rank, alpha, targets, leaveOut = "leave-out"
    /// MoS's `--valid-rank`, `--shards` and `--private-rank` (see ``AdapterOverrides``).
    case validRank = "valid-rank", shards, privateRank = "private-rank"
}

/// Values given on the command line for adapter settings; `nil` keeps the method's default.
public struct AdapterOverrides: Sendable {
    /// `--reduction-factor`: hidden size over bottleneck size (bottleneck methods), or `f` of `unipt`'s width `d / f`.
    public var reductionFactor: Float?
    /// `--rank`: the rank `r` of the LoRA or MoS update.
    public var rank: Int?
    /// `--alpha`: LoRA's or MoS's `alpha` (the update is scaled by `alpha / r`).
    public var alpha: Float?
    /// `--targets`: the linear slots LoRA or MoS adapts.
    public var targets: [LinearSlot]?
    /// `--leave-out`: the layers that get no adapter (bottleneck methods, LoRA, MoS).
    public var leaveOut: [Int]?
    /// `--valid-rank`: MoS's trainable budget `r_valid`, that of LoRA at this rank.
    public var validRank: Int?
    /// `--shards`: MoS's shards per low-rank vector, `l`.
    public var shards: Int?
    /// `--private-rank`: MoS's ranks of shards private to each layer, `r_priv`.
    public var privateRank: Int?

    /// Overrides with the given values; each one left `nil` keeps the method's default.
    public init(reductionFactor: Float? = nil, rank: Int? = nil, alpha: Float? = nil, targets: [LinearSlot]? = nil,
                leaveOut: [Int]? = nil, validRank: Int? = nil, shards: Int? = nil, privateRank: Int? = nil) {
        self.reductionFactor = reductionFactor
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.leaveOut = leaveOut
        self.validRank = validRank
        self.shards = shards
        self.privateRank = privateRank
    }

    /// Whether `option` has a value.
    public func isGiven(_ option: AdapterOption) -> Bool {
        switch option {
        case .reductionFactor: reductionFactor != nil
        case .rank: rank != nil
        case .alpha: alpha != nil
        case .targets: targets != nil
        case .leaveOut: leaveOut != nil
        case .validRank: validRank != nil
        case .shards: shards != nil
        case .privateRank: privateRank != nil
        }
    }

    /// The options that have a value, in `AdapterOption.allCases` order.
    public var given: [AdapterOption] { AdapterOption.allCases.filter(isGiven) }
}

/// Throws `ConfigurationError` unless every layer in `leaveOut` is one of `model`'s.
func validateLeftOutLayers(_ leaveOut: [Int], model: EncoderConfiguration) throws {
    if let layer = leaveOut.first(where: { !(0..<model.layerCount).contains($0) }) {
        throw ConfigurationError("cannot leave out layer \(layer): the model has layers 0...\(model.layerCount - 1)")
    }
}

/// The configuration of any adapter method, as stored in checkpoints:
/// `{"method": "seq_bn", ...the method's settings}`.
public struct AdapterConfiguration: Codable, Sendable, Equatable {
    /// The method's settings.
    public let settings: any AdapterMethodSettings

    /// Wraps one method's settings.
    public init(_ settings: any AdapterMethodSettings) { self.settings = settings }

    /// The defaults of method `name`.
    /// - Throws: `ConfigurationError` for a name that is not registered.
    public init(method name: String) throws { self.init(try AdapterMethods.defaults(name)) }

    /// The method's name.
    public var method: String { settings.method }

    /// Throws `ConfigurationError` if these settings cannot make an adapter for a model of the given shape.
    public func validate(model: EncoderConfiguration) throws { try settings.validate(model: model) }

    /// A freshly initialised adapter of this configuration for a model of the given shape.
    /// - Throws: `ConfigurationError` if the settings do not fit the model.
    public func makeAdapter(model: EncoderConfiguration, seed: UInt64) throws -> any Adapter {
        try validate(model: model)
        return try settings.makeAdapter(model: model, seed: seed)
    }

    /// The number of trainable parameters `makeAdapter` would allocate for a model of this shape.
    public func parameterCount(model: EncoderConfiguration) -> Int { settings.parameterCount(model: model) }

    /// Equal when both settings are of the same type and equal.
    public static func == (a: AdapterConfiguration, b: AdapterConfiguration) -> Bool { a.settings.isEqual(to: b.settings) }

    private enum Key: String, CodingKey { case method }

    /// Decodes `{"method": NAME, ...}` as the settings type registered for `NAME`.
    /// - Throws: `ConfigurationError` for an unknown method or settings of another method.
    public init(from decoder: any Decoder) throws {
        let method = try decoder.container(keyedBy: Key.self).decode(String.self, forKey: .method)
        let settingsType: any AdapterMethodSettings.Type
        do { settingsType = type(of: try AdapterMethods.defaults(method)) } catch {
            throw ConfigurationError("unknown adapter method \"\(method)\" in a stored configuration")
        }
        let settings = try settingsType.init(from: decoder)
        guard settings.method == method else {
            throw ConfigurationError("stored settings of method \"\(method)\" describe \"\(settings.method)\"")
        }
        self.settings = settings
    }

    /// Encodes one flat object: `method` and the settings' own keys.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(method, forKey: .method)
        try settings.encode(to: encoder)
    }
}
