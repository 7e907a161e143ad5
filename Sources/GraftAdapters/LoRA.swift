import GraftAutodiff
import GraftNN
import GraftTensor

/// Configuration of LoRA. Every default is peft's `LoraConfig` default for a BERT or XLM-R model: `r` 8,
/// `lora_alpha` 8, `lora_dropout` 0, `target_modules` `query` and `value` (peft's choice for these model
/// types), every layer, scaling `alpha / r` (`use_rslora` false).
public struct LoRAConfiguration: AdapterMethodSettings {
    /// Rank `r` of the update `B A`.
    public var rank: Int
    /// The update is scaled by `alpha / r` (or `alpha / sqrt(r)` with rsLoRA).
    public var alpha: Float
    /// Dropout on the LoRA input.
    public var dropout: Float
    /// The linear slots that get an update.
    public var targets: [LinearSlot]
    /// Rank-stabilised scaling `alpha / sqrt(r)`.
    public var rankStabilized: Bool
    /// Layers that get no update.
    public var leaveOut: [Int]

    /// LoRA settings; by default peft's: rank 8, alpha 8, no dropout, `query` and `value`
    /// in every layer, scaling `alpha / r`.
    public init(rank: Int = 8, alpha: Float = 8, dropout: Float = 0, targets: [LinearSlot] = [.query, .value],
                rankStabilized: Bool = false, leaveOut: [Int] = []) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.rankStabilized = rankStabilized
        self.leaveOut = leaveOut
    }

    /// The factor applied to `B A x`.
    public var scaling: Float { rankStabilized ? alpha / Float(rank).squareRoot() : alpha / Float(rank) }

    /// `lora`.
    public var method: String { "lora" }

    /// `--rank`, `--alpha`, `--targets` and `--leave-out`.
    public static let options: Set<AdapterOption> = [.rank, .alpha, .targets, .leaveOut]

    /// These settings with the rank, alpha, targets and left-out layers replaced where `overrides` gives them.
    public func applying(_ overrides: AdapterOverrides) -> LoRAConfiguration {
        var settings = self
        if let rank = overrides.rank { settings.rank = rank }
        if let alpha = overrides.alpha { settings.alpha = alpha }
        if let targets = overrides.targets { settings.targets = targets }
        if let leaveOut = overrides.leaveOut { settings.leaveOut = leaveOut }
        return settings
    }

    /// A freshly initialised `LoRAAdapter` for a model of this shape (`A` drawn from `seed`, `B` zero).
    public func makeAdapter(model: EncoderConfiguration, seed: UInt64) -> any Adapter {
        LoRAAdapter(self, model: model, seed: seed)
    }

    /// Throws if these settings cannot make an adapter for `model`.
    public func validate(model: EncoderConfiguration) throws {
        try validateLeftOutLayers(leaveOut, model: model)
        let largestRank = narrowestSide(of: targets, model: model)
        guard (1...largestRank).contains(rank) else {
            throw ConfigurationError("LoRA rank must be in 1...\(largestRank) (the narrowest side of a target layer), got \(rank)")
        }
        guard dropout >= 0 && dropout < 1 else { throw ConfigurationError("LoRA dropout must be in [0, 1), got \(dropout)") }
    }

    /// Trainable parameters on a model of the given shape: `r (in + out)` per adapted slot.
    public func parameterCount(model: EncoderConfiguration) -> Int {
        let layers = (0..<model.layerCount).count(where: { !leaveOut.contains($0) })
        return layers * Set(targets).reduce(0) { sum, slot in sum + rank * (slot.shape(model).inputs + slot.shape(model).outputs) }
    }
}

/// The smallest input or output size among the linear slots `targets` (1 without targets): the
/// largest rank a low-rank update of every one of them can have.
func narrowestSide(of targets: [LinearSlot], model: EncoderConfiguration) -> Int {
    targets.map { min($0.shape(model).inputs, $0.shape(model).outputs) }.min() ?? 1
}

/// The low-rank factors of one adapted linear layer: `A` (`[r, in]`), `B` (`[out, r]`).
public final class LowRankUpdate: Module {
    /// `A`, `[r, in]`: the projection down to rank `r`.
    public let a: Parameter
    /// `B`, `[out, r]`: the projection back up (zero in a fresh update).
    public let b: Parameter

    /// `A` Kaiming-uniform (bound `1/sqrt(in)`), `B` zero: training starts exactly at the base model.
    init(inputSize: Int, outputSize: Int, rank: Int, generator: inout SeededGenerator) {
        let bound = 1 / Float(inputSize).squareRoot()
        a = Parameter(.uniform(shape: [rank, inputSize], low: -bound, high: bound, generator: &generator))
        b = Parameter(Tensor(zeros: [outputSize, rank]))
    }

    init(a: Tensor, b: Tensor) {
        self.a = Parameter(a)
        self.b = Parameter(b)
    }

    /// `A` as `lora_A` and `B` as `lora_B`, as peft names them.
    public var localParameters: [(name: String, parameter: Parameter)] { [("lora_A", a), ("lora_B", b)] }

    /// The unscaled product `B A`, `[out, in]`.
    public var deltaWeight: Tensor { Tensor.matmul(b.value, a.value) }
}

/// LoRA: `y = W x + (alpha / r) B A x` on the chosen linear slots of every
/// block not left out, with dropout on the input of `A` in training only.
/// Parameter names: `layer.N.query.lora_A` (`[r, in]`), `layer.N.query.lora_B` (`[out, r]`).
public final class LoRAAdapter: MergeableAdapter {
    /// The settings this adapter was made from: rank, alpha, dropout, targets, left-out layers.
    public let configuration: LoRAConfiguration
    /// The factors by layer and slot; a left-out layer has no entry.
    public let updates: [Int: [LinearSlot: LowRankUpdate]]

    /// A freshly initialised adapter for a model of the given shape.
    public init(_ configuration: LoRAConfiguration, model: EncoderConfiguration, seed: UInt64) {
        self.configuration = configuration
        var generator = SeededGenerator(seed: seed)
        var updates: [Int: [LinearSlot: LowRankUpdate]] = [:]
        for layer in 0..<model.layerCount where !configuration.leaveOut.contains(layer) {
            for slot in LinearSlot.allCases where configuration.targets.contains(slot) {
                let (inputs, outputs) = slot.shape(model)
                updates[layer, default: [:]][slot] = LowRankUpdate(inputSize: inputs, outputSize: outputs,
                                                                  rank: configuration.rank, generator: &generator)
            }
        }
        self.updates = updates
    }

    /// An adapter from given factors (used for de-sharded MoS and imported peft adapters).
    public init(_ configuration: LoRAConfiguration, updates: [Int: [LinearSlot: LowRankUpdate]]) {
        self.configuration = configuration
        self.updates = updates
    }

    /// `lora`.
    public var method: String { configuration.method }

    /// Every linear slot that has factors.
    public var attachmentPoints: Set<AttachmentPoint> {
        Set(updates.flatMap { layer, slots in slots.keys.map { AttachmentPoint.linear(layer: layer, $0) } })
    }

    /// The factors as `layer.N.SLOT` (`layer.3.query`), in layer order, then slot order.
    public var children: [(name: String, module: any Module)] {
        updates.keys.sorted().flatMap { layer in
            LinearSlot.allCases.compactMap { slot in updates[layer]?[slot].map { ("layer.\(layer).\(slot.rawValue)", $0 as any Module) } }
        }
    }

    /// `scaling · B A dropout(x)`, `[rows, out]`, for input rows `x` (`[rows, in]`); `nil` where there are no factors.
    public func linearDelta(_ slot: LinearSlot, layer: Int, input: Variable, context: ForwardContext) -> Variable? {
        guard let update = updates[layer]?[slot] else { return nil }
        let x = context.dropout(input, probability: configuration.dropout)
        let down = Variable.linear(x, weight: context.variable(update.a), bias: nil)
        return Variable.linear(down, weight: context.variable(update.b), bias: nil) * configuration.scaling
    }

    /// This adapter itself.
    public func asLoRA() -> LoRAAdapter { self }

    /// `scaling · B A` (`[out, in]`) of every adapted slot, in layer order, then slot order.
    public func weightDeltas() -> [(layer: Int, slot: LinearSlot, delta: Tensor)] {
        updates.keys.sorted().flatMap { layer in
            LinearSlot.allCases.compactMap { slot in
                updates[layer]?[slot].map { (layer, slot, $0.deltaWeight * configuration.scaling) }
            }
        }
    }
}

extension LinearSlot {
    /// `(in, out)` sizes of this slot in a model.
    public func shape(_ model: EncoderConfiguration) -> (inputs: Int, outputs: Int) {
        switch self {
        case .query, .key, .value, .attentionOutput: (model.hiddenSize, model.hiddenSize)
        case .ffnIn: (model.hiddenSize, model.intermediateSize)
        case .ffnOut: (model.intermediateSize, model.hiddenSize)
        }
    }
}

extension TransformerEncoder {
    /// The frozen linear layer at a slot.
    public func linear(_ slot: LinearSlot, layer: Int) -> Linear {
        let block = layers.elements[layer]
        return switch slot {
        case .query: block.selfAttention.query
        case .key: block.selfAttention.key
        case .value: block.selfAttention.value
        case .attentionOutput: block.attentionOutput.dense
        case .ffnIn: block.intermediate
        case .ffnOut: block.output.dense
        }
    }

    /// An independent copy with the same configuration, weights and
    /// trainability (the weight tensors are copied on first write).
    public func copy() -> TransformerEncoder {
        let copy = TransformerEncoder(configuration: configuration, withPooler: pooler != nil)
        for (target, source) in zip(copy.namedParameters(), namedParameters()) {
            target.parameter.value = source.parameter.value
            target.parameter.isTrainable = source.parameter.isTrainable
        }
        return copy
    }
}
