import GraftAutodiff
import GraftNN

/// Consecutive examples of a mixed batch that run under one setup.
public struct ExampleGroup: Sendable, Equatable {
    /// The adapters of these examples; `nil` runs the plain backbone.
    public var setup: AdapterSetup?
    /// How many consecutive examples of the batch the group holds.
    public var examples: Int

    /// `examples` consecutive examples under `setup`.
    public init(setup: AdapterSetup?, examples: Int) {
        self.setup = setup
        self.examples = examples
    }
}

extension GraftedModel {
    /// Final hidden states, `[rows, hidden]`, of a batch (padded or packed) whose examples
    /// use different adapter setups: `groups` split the examples of `input` into
    /// consecutive groups, in order. The backbone's layers run once on the whole
    /// batch (one GEMM per frozen weight for all rows); at each attachment point
    /// every group's rows go through its own setup: a LoRA adapter's low-rank
    /// product on its group's rows, a bottleneck adapter on its group's rows.
    ///
    /// Each example's output is the one it gets in a batch of its own group
    /// (up to rounding: see `Docs/cli.md`, `adapt serve`), because every layer
    /// outside the attachment points works row by row or, in attention, within
    /// one example. The active setup is neither used nor changed. Inference only:
    /// nothing is recorded, no dropout.
    ///
    /// - Throws: `CompositionError` if a setup is not defined, is a side network
    ///   (it replaces the whole encoder) or is `.parallel` (give each group its
    ///   own setup instead); `MixedBatchError` if the groups do not cover the batch.
    public func callAsFunction(_ input: EncoderInput, groups: [ExampleGroup]) throws -> Variable {
        let covered = groups.reduce(0) { $0 + $1.examples }
        guard covered == input.batchSize, groups.allSatisfy({ $0.examples > 0 }) else {
            throw MixedBatchError.groupsDoNotCoverBatch(groupSizes: groups.map(\.examples), batchSize: input.batchSize)
        }
        for setup in groups.compactMap(\.setup) {
            try prepare(setup, seed: 0)
            if let side = setup.names.first(where: { adapters[$0] is any SideNetworkAdapter }) {
                throw CompositionError.undefined(setup: setup.description,
                    reason: "\(side) is a side network, which replaces the whole encoder and cannot share a mixed batch")
            }
            if setup.containsParallel {
                throw CompositionError.undefined(setup: setup.description,
                    reason: "Parallel splits the batch itself; in a mixed batch give each example group its own setup")
            }
        }
        return encoder(input, context: .inference(adapters: RowGroupAdapters(model: self, groups: groups)))
    }
}

/// Groups that do not split a batch.
public enum MixedBatchError: Error, CustomStringConvertible, Equatable {
    /// The groups' sizes do not add up to the batch's examples, or a group is empty.
    case groupsDoNotCoverBatch(groupSizes: [Int], batchSize: Int)

    /// A message giving the group sizes and the batch size they fail to split.
    public var description: String {
        switch self {
        case let .groupsDoNotCoverBatch(sizes, batchSize):
            "example groups of \(sizes) examples do not split a batch of \(batchSize) examples into non-empty groups"
        }
    }
}

extension AdapterSetup {
    /// Whether a `.parallel` occurs anywhere in the setup.
    var containsParallel: Bool {
        switch self {
        case .parallel: true
        case .stack(let children): children.contains { $0.containsParallel }
        case .single, .fuse, .average: false
        }
    }
}

/// The attachment points of a mixed batch: each group's rows under its own
/// setup. A point where no group's adapters act runs on all rows at once, as
/// the plain backbone (the same output, without splitting the rows).
private final class RowGroupAdapters: EncoderAdapters {
    let model: GraftedModel
    let groups: [ExampleGroup]
    /// Where the groups' adapters act, and whether any has an invertible block.
    let points: Set<AttachmentPoint>, invertible: Bool

    init(model: GraftedModel, groups: [ExampleGroup]) {
        self.model = model
        self.groups = groups
        let adapters = Set(groups.flatMap { $0.setup?.names ?? [] }).map { model.adapters[$0]! }
        points = adapters.reduce(into: []) { $0.formUnion($1.attachmentPoints) }
        invertible = adapters.contains { $0.invertible != nil }
    }

    private func eachGroup(_ tensors: [Variable], context: ForwardContext,
                           _ body: (AdapterSetup?, [Variable]) -> Variable) -> Variable {
        model.splitByExamples(tensors, sizes: groups.map(\.examples), context: context) { group, parts in body(groups[group].setup, parts) }
    }

    func linear(_ slot: LinearSlot, layer: Int, input: Variable, base: Variable, context: ForwardContext) -> Variable {
        guard points.contains(.linear(layer: layer, slot)) else { return base }
        return eachGroup([input, base], context: context) { setup, parts in
            model.linear(setup, slot, layer: layer, input: parts[0], base: parts[1], context: context)
        }
    }

    func subLayer(_ subLayer: SubLayer, layer: Int, output h: Variable, residual x: Variable, layerNorm: LayerNorm,
                  context: ForwardContext) -> Variable {
        guard points.contains(.subLayer(layer: layer, subLayer)) else {
            return model.subLayer(nil, subLayer, layer: layer, output: h, residual: x, layerNorm: layerNorm, context: context)
        }
        return eachGroup([h, x], context: context) { setup, parts in
            model.subLayer(setup, subLayer, layer: layer, output: parts[0], residual: parts[1], layerNorm: layerNorm, context: context)
        }
    }

    func embeddings(_ embeddings: Variable, context: ForwardContext) -> Variable {
        guard invertible else { return embeddings }
        return eachGroup([embeddings], context: context) { setup, parts in model.embeddings(setup, parts[0], context: context) }
    }

    func beforeDecoder(_ states: Variable, context: ForwardContext) -> Variable {
        guard invertible else { return states }
        return eachGroup([states], context: context) { setup, parts in model.beforeDecoder(setup, parts[0], context: context) }
    }
}
