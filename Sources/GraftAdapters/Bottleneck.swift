import GraftAutodiff
import GraftNN
import GraftTensor

/// Configuration of the bottleneck family (`seq_bn`, `double_seq_bn`,
/// `par_bn` and their invertible variants), with AdapterHub's defaults.
public struct BottleneckConfiguration: AdapterMethodSettings {
    /// Where the adapters sit and what they read.
    public enum Placement: String, Codable, Sendable {
        /// Pfeiffer: after the feed-forward block, reading `LN(u)`, the stream `u` (which starts as `x + h`)
        /// normalised: `LN(u + Up(act(Down(LN(u)))))`, that is `LN(x + h + Up(act(Down(LN(x + h)))))` unless an
        /// earlier adapter in a Stack has changed the stream.
        case sequential
        /// Houlsby: after attention and after the feed-forward block, reading `u - x`, the stream `u` (which
        /// starts as `x + h`) less the residual: `LN(u + Up(act(Down(u - x))))`. That is `h`, and the output
        /// `LN(x + h + Up(act(Down(h))))`, unless an earlier adapter in a Stack has changed the stream.
        case double
        /// After the feed-forward block, reading the sub-layer input `x`:
        /// `LN(x + h + s · Up(act(Down(x))))`.
        case parallel
    }

    /// Where the adapters sit and what they read: Pfeiffer, Houlsby or parallel.
    public var placement: Placement
    /// Hidden size divided by bottleneck size.
    public var reductionFactor: Float
    /// Per-layer reduction factors, by layer index (as strings, for JSON).
    public var reductionFactorPerLayer: [String: Float]
    /// Layers that get no adapter.
    public var leaveOut: [Int]
    /// The non-linearity between the down and up projections.
    public var activation: Activation
    /// Multiplies the adapter output.
    public var scaling: Float
    /// How the projections of the bottleneck blocks start (the invertible block always starts `bert`).
    public var initialization: BottleneckInitialization
    /// Adds a NICE invertible block on the embeddings (MAD-X).
    public var invertible: Bool
    /// Reduction factor inside the invertible block's coupling networks.
    public var invertibleReductionFactor: Float

    /// Settings of the given placement, reduction factor and activation; by default no per-layer
    /// factors or left-out layers, scaling 1, `bert` initialisation and no invertible block.
    public init(placement: Placement, reductionFactor: Float, reductionFactorPerLayer: [String: Float] = [:],
                leaveOut: [Int] = [], activation: Activation, scaling: Float = 1,
                initialization: BottleneckInitialization = .bert, invertible: Bool = false,
                invertibleReductionFactor: Float = 2) {
        self.placement = placement
        self.reductionFactor = reductionFactor
        self.reductionFactorPerLayer = reductionFactorPerLayer
        self.leaveOut = leaveOut
        self.activation = activation
        self.scaling = scaling
        self.initialization = initialization
        self.invertible = invertible
        self.invertibleReductionFactor = invertibleReductionFactor
    }

    /// `seq_bn` (Pfeiffer): reduction factor 16, ReLU.
    public static let seqBn = BottleneckConfiguration(placement: .sequential, reductionFactor: 16, activation: .relu)
    /// `double_seq_bn` (Houlsby): reduction factor 16, Swish.
    public static let doubleSeqBn = BottleneckConfiguration(placement: .double, reductionFactor: 16, activation: .swish)
    /// `par_bn`: reduction factor 2, ReLU, scaling 4, near-identity ("mam") initialisation.
    public static let parBn = BottleneckConfiguration(placement: .parallel, reductionFactor: 2, activation: .relu,
                                                      scaling: 4, initialization: .nearIdentity)
    /// `seq_bn_inv`: `seq_bn` plus the NICE block.
    public static let seqBnInv: BottleneckConfiguration = {
        var c = seqBn
        c.invertible = true
        return c
    }()
    /// `double_seq_bn_inv`: `double_seq_bn` plus the NICE block.
    public static let doubleSeqBnInv: BottleneckConfiguration = {
        var c = doubleSeqBn
        c.invertible = true
        return c
    }()

    /// The sub-layers that get an adapter.
    public var subLayers: [SubLayer] { placement == .double ? [.attention, .feedForward] : [.feedForward] }

    /// The bottleneck size in block `layer` of a model with hidden size `hidden`,
    /// or `nil` if the layer is left out.
    public func bottleneckSize(layer: Int, hidden: Int) -> Int? {
        guard !leaveOut.contains(layer) else { return nil }
        let factor = reductionFactorPerLayer[String(layer)] ?? reductionFactor
        return Swift.max(1, Int(Float(hidden) / factor))
    }

    /// `--reduction-factor` and `--leave-out`.
    public static let options: Set<AdapterOption> = [.reductionFactor, .leaveOut]

    /// These settings with the reduction factor and left-out layers replaced where `overrides` gives them.
    public func applying(_ overrides: AdapterOverrides) -> BottleneckConfiguration {
        var settings = self
        if let reductionFactor = overrides.reductionFactor { settings.reductionFactor = reductionFactor }
        if let leaveOut = overrides.leaveOut { settings.leaveOut = leaveOut }
        return settings
    }

    /// A freshly initialised `BottleneckAdapter` for a model of this shape, its weights drawn from `seed`.
    public func makeAdapter(model: EncoderConfiguration, seed: UInt64) -> any Adapter {
        BottleneckAdapter(self, model: model, seed: seed)
    }

    /// Throws if these settings cannot make an adapter for `model`.
    public func validate(model: EncoderConfiguration) throws {
        try validateLeftOutLayers(leaveOut, model: model)
        let factors = [reductionFactor, invertibleReductionFactor] + reductionFactorPerLayer.values
        guard factors.allSatisfy({ $0.isFinite && $0 >= 1.0 / 16 }) else {
            throw ConfigurationError("bottleneck reduction factors must be at least 1/16 (a bottleneck at most 16 times the hidden size), got \(factors)")
        }
        if let key = reductionFactorPerLayer.keys.sorted().first(where: { Int($0) == nil }) {
            throw ConfigurationError("per-layer reduction factor key \"\(key)\" is not a layer index")
        }
        guard !invertible || model.hiddenSize % 2 == 0 else {
            throw ConfigurationError("an invertible adapter needs an even hidden size, got \(model.hiddenSize)")
        }
    }

    /// Trainable parameters on a model of the given shape: `2 d b + b + d` per
    /// bottleneck of size `b`, plus the invertible block's `F` and `G`.
    public func parameterCount(model: EncoderConfiguration) -> Int {
        func block(_ size: Int, _ bottleneck: Int) -> Int { 2 * size * bottleneck + bottleneck + size }
        let d = model.hiddenSize
        let layers = (0..<model.layerCount).compactMap { bottleneckSize(layer: $0, hidden: d) }
            .reduce(0) { $0 + subLayers.count * block(d, $1) }
        guard invertible else { return layers }
        return layers + 2 * block(d / 2, InvertibleBlock.innerSize(hiddenSize: d, reductionFactor: invertibleReductionFactor))
    }

    /// The method name these settings correspond to.
    public var method: String {
        let base = switch placement { case .sequential: "seq_bn"; case .double: "double_seq_bn"; case .parallel: "par_bn" }
        return invertible ? base + "_inv" : base
    }
}

/// A bottleneck adapter: one `BottleneckBlock` per adapted sub-layer of every
/// block not left out, plus an optional invertible block on the embeddings.
///
/// Parameter names: `layer.N.attention.down.weight`, `layer.N.feed_forward.up.bias`,
/// `invertible.f.down.weight`, ...
public final class BottleneckAdapter: Adapter {
    /// The settings this adapter was made from.
    public let configuration: BottleneckConfiguration
    /// Blocks by layer and sub-layer.
    public let blocks: [Int: [SubLayer: BottleneckBlock]]
    /// The MAD-X invertible block on the embeddings; `nil` unless `configuration.invertible`.
    public let invertible: InvertibleBlock?

    /// A freshly initialised adapter for a model of the given shape.
    public init(_ configuration: BottleneckConfiguration, model: EncoderConfiguration, seed: UInt64) {
        self.configuration = configuration
        var generator = SeededGenerator(seed: seed)
        var blocks: [Int: [SubLayer: BottleneckBlock]] = [:]
        for layer in 0..<model.layerCount {
            guard let size = configuration.bottleneckSize(layer: layer, hidden: model.hiddenSize) else { continue }
            for subLayer in configuration.subLayers {
                blocks[layer, default: [:]][subLayer] = BottleneckBlock(
                    inputSize: model.hiddenSize, bottleneckSize: size, activation: configuration.activation,
                    initialization: configuration.initialization, generator: &generator)
            }
        }
        self.blocks = blocks
        invertible = configuration.invertible
            ? InvertibleBlock(hiddenSize: model.hiddenSize, reductionFactor: configuration.invertibleReductionFactor,
                              generator: &generator)
            : nil
    }

    /// The configuration's method: `seq_bn`, `double_seq_bn` or `par_bn`, with `_inv` if invertible.
    public var method: String { configuration.method }

    /// Every sub-layer that has a block (the invertible block is not an attachment point).
    public var attachmentPoints: Set<AttachmentPoint> {
        Set(blocks.flatMap { layer, subLayers in subLayers.keys.map { AttachmentPoint.subLayer(layer: layer, $0) } })
    }

    /// An adapter whose every weight is `Σ weights[i] · adapters[i]`'s weight.
    convenience init(averaging adapters: [BottleneckAdapter], weights: [Float], model: EncoderConfiguration) {
        self.init(adapters[0].configuration, model: model, seed: 0)
        let sources = adapters.map { Dictionary(uniqueKeysWithValues: $0.namedParameters().map { ($0.name, $0.parameter.value) }) }
        for (name, parameter) in namedParameters() {
            var sum = Tensor(zeros: parameter.value.shape)
            for (source, weight) in zip(sources, weights) { sum.add(source[name]!, scaledBy: weight) }
            parameter.value = sum
        }
    }

    /// The blocks as `layer.N.attention` and `layer.N.feed_forward` in layer order, then `invertible` if any.
    public var children: [(name: String, module: any Module)] {
        var result: [(name: String, module: any Module)] = []
        for layer in blocks.keys.sorted() {
            for subLayer in SubLayer.allCases {
                if let block = blocks[layer]?[subLayer] { result.append(("layer.\(layer).\(subLayer.rawValue)", block)) }
            }
        }
        if let invertible { result.append(("invertible", invertible)) }
        return result
    }

    /// The stream plus `scaling · Block(input)`, the block reading `layerNorm(u)` (sequential), `u - x`
    /// (double: `h` when no earlier adapter changed the stream) or `x` (parallel); `nil` where there is no block.
    public func subLayerStep(_ subLayer: SubLayer, layer: Int, residual x: Variable, stream u: Variable, layerNorm: LayerNorm,
                             context: ForwardContext) -> Variable? {
        guard let block = blocks[layer]?[subLayer] else { return nil }
        let input: Variable = switch configuration.placement {
        case .sequential: layerNorm(u, tape: context.tape)
        case .double: u - x
        case .parallel: x
        }
        let output = block(input, context: context)
        return u + (configuration.scaling == 1 ? output : output * configuration.scaling)
    }
}
