import GraftAutodiff
import GraftNN
import GraftTensor

/// Configuration of LoRA, with peft's defaults except `alpha` (peft: 8, same here).
public struct LoRAConfiguration: Codable, Sendable, Equatable {
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
}

/// The low-rank factors of one adapted linear layer: `A` (`[r, in]`), `B` (`[out, r]`).
public final class LowRankUpdate: Module {
    public let a: Parameter
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

    public var localParameters: [(name: String, parameter: Parameter)] { [("lora_A", a), ("lora_B", b)] }

    /// `ΔW = B A`, `[out, in]`.
    public var deltaWeight: Tensor { Tensor.matmul(b.value, a.value) }
}

/// LoRA: `y = W x + (alpha / r) B A x` on the chosen linear slots of every
/// block not left out. Parameter names: `layer.N.query.lora_A`, ...
public final class LoRAAdapter: Adapter {
    public let configuration: LoRAConfiguration
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

    public var method: String { "lora" }

    public var attachmentPoints: Set<AttachmentPoint> {
        Set(updates.flatMap { layer, slots in slots.keys.map { AttachmentPoint.linear(layer: layer, $0) } })
    }

    public var children: [(name: String, module: any Module)] {
        updates.keys.sorted().flatMap { layer in
            LinearSlot.allCases.compactMap { slot in updates[layer]?[slot].map { ("layer.\(layer).\(slot.rawValue)", $0 as any Module) } }
        }
    }

    public func linearDelta(_ slot: LinearSlot, layer: Int, input: Variable, context: ForwardContext) -> Variable? {
        guard let update = updates[layer]?[slot] else { return nil }
        let x = context.dropout(input, probability: configuration.dropout)
        let down = Variable.linear(x, weight: context.variable(update.a), bias: nil)
        return Variable.linear(down, weight: context.variable(update.b), bias: nil) * configuration.scaling
    }

    /// Adds (`sign` 1) or removes (`sign` -1) the scaled updates to the encoder's frozen weights.
    func apply(to encoder: TransformerEncoder, sign: Float) {
        for (layer, slots) in updates {
            for (slot, update) in slots {
                encoder.linear(slot, layer: layer).weight.value.add(update.deltaWeight, scaledBy: sign * configuration.scaling)
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
}
