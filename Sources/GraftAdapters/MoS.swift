import GraftAutodiff
import GraftNN
import GraftTensor

/// Configuration of MoS (Mixture of Shards): LoRA whose low-rank vectors are
/// assembled from shards of pools shared by all layers.
///
/// Defaults: rank 8 per layer on a trainable budget of LoRA at rank 2 (4x
/// fewer trainable parameters than LoRA at rank 8), 2 shards per vector, 1
/// private rank, alpha 8 (scaling 1), no dropout, query and value.
public struct MoSConfiguration: AdapterMethodSettings {
    /// Rank `r` each layer runs at.
    public var rank: Int
    /// `r_valid`: the trainable budget, equal to LoRA at this rank.
    public var validRank: Int
    /// `l`: shards per low-rank vector.
    public var shards: Int
    /// `r_priv`: ranks' worth of shards (`r_priv · l` shards) private to each layer.
    public var privateRank: Int
    /// The update is scaled by `alpha / r`.
    public var alpha: Float
    /// Dropout on the input of `A`, in training only.
    public var dropout: Float
    /// The linear slots that get an update; each slot type has its own pools.
    public var targets: [LinearSlot]
    /// Layers that get no update (they take no share of the pools either).
    public var leaveOut: [Int]
    /// Seed of the index vectors, which are fixed at initialisation and not stored.
    public var indexSeed: UInt64

    /// MoS settings; by default rank 8 on the budget of LoRA at rank 2, 2 shards, 1 private rank,
    /// alpha 8, no dropout, `query` and `value` in every layer, index seed 0.
    public init(rank: Int = 8, validRank: Int = 2, shards: Int = 2, privateRank: Int = 1, alpha: Float = 8,
                dropout: Float = 0, targets: [LinearSlot] = [.query, .value], leaveOut: [Int] = [], indexSeed: UInt64 = 0) {
        self.rank = rank
        self.validRank = validRank
        self.shards = shards
        self.privateRank = privateRank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
        self.leaveOut = leaveOut
        self.indexSeed = indexSeed
    }

    /// The factor applied to `B A x`.
    public var scaling: Float { alpha / Float(rank) }

    /// The adapted layers of a model, in order.
    public func layers(_ model: EncoderConfiguration) -> [Int] {
        (0..<model.layerCount).filter { !leaveOut.contains($0) }
    }

    /// `P = r_valid · L · l`: shard rows in each pool, `L` counting adapted layers only.
    public func poolRows(_ model: EncoderConfiguration) -> Int { validRank * layers(model).count * shards }

    /// Trainable parameters: `r_valid · L · (in + out)` per target slot type, as LoRA at rank `r_valid`.
    public func parameterCount(model: EncoderConfiguration) -> Int {
        Set(targets).reduce(0) { sum, slot in
            sum + validRank * layers(model).count * (slot.shape(model).inputs + slot.shape(model).outputs)
        }
    }

    /// `mos`.
    public var method: String { "mos" }

    /// `--rank`, `--alpha`, `--targets`, `--leave-out`, `--valid-rank`, `--shards` and `--private-rank`.
    public static let options: Set<AdapterOption> = [.rank, .alpha, .targets, .leaveOut, .validRank, .shards, .privateRank]

    /// These settings with each of their options that `overrides` gives replaced.
    public func applying(_ overrides: AdapterOverrides) -> MoSConfiguration {
        var settings = self
        if let rank = overrides.rank { settings.rank = rank }
        if let alpha = overrides.alpha { settings.alpha = alpha }
        if let targets = overrides.targets { settings.targets = targets }
        if let leaveOut = overrides.leaveOut { settings.leaveOut = leaveOut }
        if let validRank = overrides.validRank { settings.validRank = validRank }
        if let shards = overrides.shards { settings.shards = shards }
        if let privateRank = overrides.privateRank { settings.privateRank = privateRank }
        return settings
    }

    /// A freshly initialised `MoSAdapter` for a model of this shape (pools drawn from `seed`, index vectors from `indexSeed`).
    /// - Throws: `ConfigurationError` if these settings do not fit the model.
    public func makeAdapter(model: EncoderConfiguration, seed: UInt64) throws -> any Adapter {
        try MoSAdapter(self, model: model, seed: seed)
    }

    /// Throws if these settings cannot make an adapter for `model`.
    public func validate(model: EncoderConfiguration) throws {
        try validateLeftOutLayers(leaveOut, model: model)
        let largestRank = narrowestSide(of: targets, model: model)
        guard (1...largestRank).contains(rank), (1...largestRank).contains(validRank), (1...largestRank).contains(shards) else {
            throw ConfigurationError("MoS rank, valid rank and shards must be in 1...\(largestRank) (the narrowest side of a target layer), got \(rank), \(validRank), \(shards)")
        }
        guard privateRank >= 0, privateRank <= min(rank, validRank) else {
            throw ConfigurationError("MoS private rank must be in 0...\(min(rank, validRank)) (at most rank and valid rank), got \(privateRank)")
        }
        guard privateRank == rank || privateRank < validRank else {
            throw ConfigurationError("MoS private rank \(privateRank) equals the valid rank, so no public shards are left for the other \(rank - privateRank) ranks")
        }
        guard dropout >= 0 && dropout < 1 else { throw ConfigurationError("MoS dropout must be in [0, 1), got \(dropout)") }
        guard !layers(model).isEmpty else { throw ConfigurationError("MoS leaves out every layer of the model") }
        for slot in Set(targets) {
            let (inputs, outputs) = slot.shape(model)
            guard inputs % shards == 0, outputs % shards == 0 else {
                throw ConfigurationError("MoS: \(slot.rawValue) is \(inputs) -> \(outputs), not divisible into \(shards) shards")
            }
        }
    }
}

/// The shard pools of one projection type, shared by every adapted layer:
/// `pool_A` `[P, in / l]` and `pool_B` `[P, out / l]`.
public final class ShardPool: Module {
    /// `pool_A`, `[P, in / l]`: the shards each layer's `A` is assembled from (Kaiming-uniform at first).
    public let a: Parameter
    /// `pool_B`, `[P, out / l]`: the shards each layer's `Bᵀ` is assembled from (zero at first).
    public let b: Parameter

    init(a: Tensor, b: Tensor) {
        self.a = Parameter(a)
        self.b = Parameter(b)
    }

    /// `a` as `pool_A` and `b` as `pool_B`.
    public var localParameters: [(name: String, parameter: Parameter)] { [("pool_A", a), ("pool_B", b)] }
}

/// The rows of a layer's shards in a slot's pools: `r · l` each, drawn
/// independently for `A` and `B` (pair dissociation).
public struct ShardIndices: Sendable, Equatable {
    /// The rows of `pool_A` that make this layer's `A`: its private shards, then the public ones it drew.
    public let a: [Int]
    /// The rows of `pool_B` that make this layer's `Bᵀ`: its private shards, then the public ones it drew.
    public let b: [Int]
}

/// MoS: LoRA on the chosen slots with `A` and `B` assembled per layer from
/// shards of pools shared by all layers, `y = W x + (alpha / r) B A x`.
///
/// Each layer gathers `r · l` shard rows from a pool by a fixed index vector:
/// first its `r_priv · l` private shards (rows `p · r_priv · l ..< (p + 1) ·
/// r_priv · l` of the private region at the start of the pool, `p` the layer's
/// position among adapted layers), then `(r - r_priv) · l` shards of the public
/// region (the rest of the pool), drawn by shuffling it (again when a layer
/// needs more shards than it holds). Row `i` of `A` is the concatenation of
/// gathered shards `i, i + r, ..., i + (l - 1) r`; `Bᵀ` is built the same way.
/// Pool A starts Kaiming-uniform (bound `1/sqrt(in)`), pool B zero.
///
/// Parameter names: `query.pool_A`, `query.pool_B`, ...
public final class MoSAdapter: MergeableAdapter {
    /// The settings this adapter was made from.
    public let configuration: MoSConfiguration
    /// The pools by target slot type, each shared by every adapted layer.
    public let pools: [LinearSlot: ShardPool]
    /// The index vectors, by layer and slot.
    public let indices: [Int: [LinearSlot: ShardIndices]]

    /// A freshly initialised adapter: pools from `seed`, index vectors from the configuration's `indexSeed`.
    public init(_ configuration: MoSConfiguration, model: EncoderConfiguration, seed: UInt64) throws {
        try configuration.validate(model: model)
        self.configuration = configuration
        let c = configuration
        let layers = c.layers(model), rows = c.poolRows(model)
        let privateRows = layers.count * c.privateRank * c.shards
        var poolGenerator = SeededGenerator(seed: seed)
        var indexGenerator = SeededGenerator(seed: c.indexSeed)
        var pools: [LinearSlot: ShardPool] = [:]
        var indices: [Int: [LinearSlot: ShardIndices]] = [:]
        for slot in LinearSlot.allCases where c.targets.contains(slot) {
            let (inputs, outputs) = slot.shape(model)
            let bound = 1 / Float(inputs).squareRoot()
            pools[slot] = ShardPool(
                a: .uniform(shape: [rows, inputs / c.shards], low: -bound, high: bound, generator: &poolGenerator),
                b: Tensor(zeros: [rows, outputs / c.shards]))
            for (position, layer) in layers.enumerated() {
                let own = Array((position * c.privateRank * c.shards)..<((position + 1) * c.privateRank * c.shards))
                func draw() -> [Int] {
                    own + MoSAdapter.draw((c.rank - c.privateRank) * c.shards, from: privateRows..<rows, generator: &indexGenerator)
                }
                let a = draw()
                indices[layer, default: [:]][slot] = ShardIndices(a: a, b: draw())
            }
        }
        self.pools = pools
        self.indices = indices
    }

    /// `count` rows of `range`: shuffled copies of it, concatenated, cut to length.
    private static func draw(_ count: Int, from range: Range<Int>, generator: inout SeededGenerator) -> [Int] {
        var result: [Int] = []
        while result.count < count {
            var rows = Array(range)
            // Fisher-Yates with the generator's own bits, so that the indices never depend on the standard library.
            for i in stride(from: rows.count - 1, to: 0, by: -1) {
                rows.swapAt(i, Int(generator.next() % UInt64(i + 1)))
            }
            result += rows
        }
        return Array(result.prefix(count))
    }

    /// `mos`.
    public var method: String { configuration.method }

    /// Every target slot of every layer not left out.
    public var attachmentPoints: Set<AttachmentPoint> {
        Set(indices.flatMap { layer, slots in slots.keys.map { AttachmentPoint.linear(layer: layer, $0) } })
    }

    /// The pools, named by slot (`query`, `value`, ...) in slot order.
    public var children: [(name: String, module: any Module)] {
        LinearSlot.allCases.compactMap { slot in pools[slot].map { (slot.rawValue, $0 as any Module) } }
    }

    /// Gathers rows `indices` (`r · l` of them) of a `[P, w]` pool into `[r, l · w]`:
    /// row `i` is the concatenation of gathered rows `i, i + r, ..., i + (l - 1) r`.
    private func assemble(_ pool: Variable, _ indices: [Int]) -> Variable {
        let (rank, shards, width) = (configuration.rank, configuration.shards, pool.shape[1])
        return Variable.gatherRows(pool, indices).reshaped([shards, rank, width]).permuted([1, 0, 2]).reshaped([rank, shards * width])
    }

    /// `scaling · B A dropout(x)`, `[rows, out]`, for input rows `x` (`[rows, in]`), with `A` and `Bᵀ` assembled
    /// from the slot's pools by this layer's indices (gradients flow to the pools); `nil` where the layer or slot is not adapted.
    public func linearDelta(_ slot: LinearSlot, layer: Int, input: Variable, context: ForwardContext) -> Variable? {
        guard let index = indices[layer]?[slot], let pool = pools[slot] else { return nil }
        let a = assemble(context.variable(pool.a), index.a)  // [r, in]
        let bTransposed = assemble(context.variable(pool.b), index.b)  // [r, out]
        let x = context.dropout(input, probability: configuration.dropout)
        return Variable.matmul(Variable.linear(x, weight: a, bias: nil), bTransposed) * configuration.scaling
    }

    /// Plain per-layer LoRA factors (rank `r`, the same scaling and dropout)
    /// that compute exactly what this adapter computes, for merging and export.
    public func asLoRA() -> LoRAAdapter {
        let c = configuration
        var updates: [Int: [LinearSlot: LowRankUpdate]] = [:]
        for (layer, slots) in indices {
            for (slot, index) in slots {
                let pool = pools[slot]!
                updates[layer, default: [:]][slot] = LowRankUpdate(
                    a: assemble(Variable(pool.a.value), index.a).value,
                    b: assemble(Variable(pool.b.value), index.b).value.permuted([1, 0]))
            }
        }
        let lora = LoRAConfiguration(rank: c.rank, alpha: c.alpha, dropout: c.dropout, targets: c.targets, leaveOut: c.leaveOut)
        return LoRAAdapter(lora, updates: updates)
    }

    /// `scaling · B A` (`[out, in]`) of every adapted slot, from the assembled factors (`asLoRA()`).
    public func weightDeltas() -> [(layer: Int, slot: LinearSlot, delta: Tensor)] { asLoRA().weightDeltas() }
}
