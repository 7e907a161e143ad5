import GraftAutodiff
import GraftNN
import GraftTensor

/// A frozen encoder with named adapters grafted onto it and an active setup.
///
/// `GraftedModel` is the `EncoderAdapters` the encoder consults at its
/// attachment points: pass `context(...)` to the encoder, or call `callAsFunction`.
public final class GraftedModel: EncoderAdapters {
    /// The encoder, frozen by `init`; `merge` and `unmerge` add adapter updates to its weights and take them off.
    public let encoder: TransformerEncoder
    /// The attached adapters, by name.
    public private(set) var adapters: [String: any Adapter] = [:]
    /// Fusion layers by fused adapter names joined with commas, at every point
    /// where at least two of them act.
    public private(set) var fusions: [String: [AttachmentPoint: FusionLayer]] = [:]
    /// The setup of the next forward passes; `nil` runs the plain backbone.
    public private(set) var active: AdapterSetup?
    /// The adapters whose update is folded into the encoder's weights (see `merge`).
    public private(set) var merged: Set<String> = []
    /// Weighted averages materialised by `activate`, by setup description.
    private var averages: [String: any Adapter] = [:]

    /// Wraps `encoder`, freezing all its parameters, with no adapters and no active setup.
    public init(encoder: TransformerEncoder) {
        self.encoder = encoder
        encoder.setTrainable(false)
    }

    /// Attaches an adapter under a new name.
    public func add(_ name: String, _ adapter: any Adapter) throws {
        guard adapters[name] == nil else { throw CompositionError.duplicateName(name) }
        adapters[name] = adapter
    }

    /// Detaches an adapter (and deactivates the setup if it used it). A merged
    /// adapter is unmerged first, so the encoder gets its own weights back.
    public func remove(_ name: String) {
        if merged.remove(name) != nil, let adapter = adapters[name] as? any MergeableAdapter {
            adapter.fold(into: encoder, sign: -1)
        }
        adapters[name] = nil
        if active?.names.contains(name) == true { active = nil }
    }

    /// Adds adapter `name`'s update `ΔW` to the encoder's frozen weights, so
    /// that the plain encoder computes what `.single(name)` computed (without
    /// the adapter's input dropout: merging is for inference).
    ///
    /// A merged adapter is part of the backbone under every setup until
    /// `unmerge`: an active setup that names it is deactivated, and activating
    /// a setup that names it throws `CompositionError.merged`, so its update is
    /// never applied twice.
    /// - Throws: `CompositionError` if there is no such adapter, it is not
    ///   mergeable (bottleneck adapters) or it is already merged.
    public func merge(_ name: String) throws {
        let adapter = try mergeable(name)
        guard merged.insert(name).inserted else { throw CompositionError.merged(name) }
        if active?.names.contains(name) == true { active = nil }
        adapter.fold(into: encoder, sign: 1)
    }

    /// Subtracts adapter `name`'s update from the encoder's weights again.
    /// - Throws: `CompositionError.notMerged` if it is not merged.
    public func unmerge(_ name: String) throws {
        let adapter = try mergeable(name)
        guard merged.remove(name) != nil else { throw CompositionError.notMerged(name) }
        adapter.fold(into: encoder, sign: -1)
    }

    /// A copy of the encoder (with any adapters already merged) with the updates
    /// of `names` added; this model and its encoder are left untouched.
    public func mergedEncoderCopy(_ names: [String]) throws -> TransformerEncoder {
        let updates = try names.map { name in
            guard !merged.contains(name) else { throw CompositionError.merged(name) }
            return try mergeable(name)
        }
        let copy = encoder.copy()
        for adapter in updates { adapter.fold(into: copy, sign: 1) }
        return copy
    }

    private func mergeable(_ name: String) throws -> any MergeableAdapter {
        guard let adapter = adapters[name] else { throw CompositionError.unknownAdapter(name, known: adapters.keys.sorted()) }
        guard let mergeable = adapter as? any MergeableAdapter else {
            throw CompositionError.notMergeable(name, method: adapter.method)
        }
        return mergeable
    }

    /// Makes `setup` the active one after checking that it is defined.
    public func activate(_ setup: AdapterSetup?, seed: UInt64 = 0) throws {
        guard let setup else { active = nil; return }
        try prepare(setup, seed: seed)
        active = setup
    }

    /// Checks that `setup` is defined and creates what it needs (fusion layers, averaged adapters).
    func prepare(_ setup: AdapterSetup, seed: UInt64) throws {
        for name in setup.names where adapters[name] == nil {
            throw CompositionError.unknownAdapter(name, known: adapters.keys.sorted())
        }
        if let name = setup.names.first(where: merged.contains) { throw CompositionError.merged(name) }
        if case .single = setup {} else if let side = setup.names.first(where: { adapters[$0] is any SideNetworkAdapter }) {
            throw CompositionError.undefined(setup: setup.description,
                reason: "\(side) is a side network, which replaces the encoder's output and composes with no other adapter")
        }
        switch setup {
        case .single: break
        case .stack(let children), .parallel(let children):
            guard !children.isEmpty else { throw CompositionError.undefined(setup: setup.description, reason: "it has no children") }
            for child in children { try prepare(child, seed: seed) }
        case .fuse(let names):
            guard names.count >= 2 else { throw CompositionError.undefined(setup: setup.description, reason: "fusion needs at least two adapters") }
            if let inverted = names.first(where: { adapters[$0]?.invertible != nil }) {
                throw CompositionError.undefined(setup: setup.description,
                    reason: "\(inverted) has an invertible block, and attention over invertible embeddings has no inverse for the decoder")
            }
            let key = names.joined(separator: ",")
            if fusions[key] == nil {
                var generator = SeededGenerator(seed: seed)
                var counts: [AttachmentPoint: Int] = [:]
                for name in names { for point in adapters[name]!.attachmentPoints { counts[point, default: 0] += 1 } }
                var layers: [AttachmentPoint: FusionLayer] = [:]
                for point in counts.keys.sorted() where counts[point]! >= 2 {
                    let width = switch point {
                    case .subLayer: encoder.configuration.hiddenSize
                    case .linear(_, let slot): slot.shape(encoder.configuration).outputs
                    }
                    layers[point] = FusionLayer(hiddenSize: width, generator: &generator)
                }
                fusions[key] = layers
            }
        case let .average(names, weights):
            guard names.count == weights.count, !names.isEmpty else {
                throw CompositionError.undefined(setup: setup.description, reason: "give one weight per adapter")
            }
            averages[setup.description] = try averagedAdapter(names.map { adapters[$0]! }, weights: weights, setup: setup)
        }
    }

    /// Whether training passes recompute each encoder layer's activations in
    /// backward instead of keeping them (see `ForwardContext.recomputesLayers`).
    public var recomputesLayers = false

    /// The forward context of a pass through this model.
    public func context(tape: Tape? = nil, isTraining: Bool = false, seed: UInt64 = 0) -> ForwardContext {
        let context = ForwardContext(tape: tape, isTraining: isTraining, seed: seed, adapters: self)
        context.recomputesLayers = recomputesLayers
        return context
    }

    /// Final hidden states of the adapted encoder, `[batch * length, hidden]`
    /// (a side network's output when the active setup is one).
    public func callAsFunction(_ input: EncoderInput, context: ForwardContext) -> Variable {
        if case .single(let name)? = active, let side = adapters[name] as? any SideNetworkAdapter {
            return side.output(of: encoder, input: input, context: context)
        }
        return encoder(input, context: context)
    }

    /// The trainable parameters of the active adapters and fusions, by name
    /// (`adapters.NAME.layer.3.feed_forward.down.weight`, `fusion.A,B.layer.3...`).
    public func namedParameters(of names: [String]? = nil) -> [(name: String, parameter: Parameter)] {
        var result: [(name: String, parameter: Parameter)] = []
        for name in (names ?? adapters.keys.sorted()) {
            guard let adapter = adapters[name] else { continue }
            result += adapter.namedParameters().map { ("adapters.\(name).\($0.name)", $0.parameter) }
        }
        for (key, layers) in fusions.sorted(by: { $0.key < $1.key })
        where names == nil || key.split(separator: ",").allSatisfy({ names!.contains(String($0)) }) {
            for point in layers.keys.sorted() {
                result += layers[point]!.namedParameters().map { ("fusion.\(key).\(point).\($0.name)", $0.parameter) }
            }
        }
        return result
    }

    // MARK: EncoderAdapters

    /// `base` with the active setup's deltas added (or fused); `base` itself without an active setup.
    public func linear(_ slot: LinearSlot, layer: Int, input: Variable, base: Variable, context: ForwardContext) -> Variable {
        linear(active, slot, layer: layer, input: input, base: base, context: context)
    }

    /// `layerNorm` of the stream `h + x` after the active setup's adapters; `layerNorm(h + x)` without an active setup.
    public func subLayer(_ subLayer: SubLayer, layer: Int, output h: Variable, residual x: Variable, layerNorm: LayerNorm,
                         context: ForwardContext) -> Variable {
        self.subLayer(active, subLayer, layer: layer, output: h, residual: x, layerNorm: layerNorm, context: context)
    }

    /// The embeddings through the forward coupling of the active setup's invertible block, if it has one.
    public func embeddings(_ embeddings: Variable, context: ForwardContext) -> Variable {
        self.embeddings(active, embeddings, context: context)
    }

    /// The masked-LM head's states through the inverse of the active setup's invertible block, if it has one.
    public func beforeDecoder(_ states: Variable, context: ForwardContext) -> Variable {
        beforeDecoder(active, states, context: context)
    }

    // MARK: Composition

    // The attachment points under a given setup (`nil`: the plain backbone), for
    // the active setup above and for each example group of a mixed batch.

    func linear(_ setup: AdapterSetup?, _ slot: LinearSlot, layer: Int, input: Variable, base: Variable,
                context: ForwardContext) -> Variable {
        guard let setup else { return base }
        return linearOutput(setup, slot: slot, layer: layer, input: input, base: base, context: context)
    }

    func subLayer(_ setup: AdapterSetup?, _ subLayer: SubLayer, layer: Int, output h: Variable, residual x: Variable,
                  layerNorm: LayerNorm, context: ForwardContext) -> Variable {
        let u = h + x
        guard let setup else { return layerNorm(u, tape: context.tape) }
        return layerNorm(advance(setup, subLayer: subLayer, layer: layer, x: x, u: u, layerNorm: layerNorm, context: context),
                         tape: context.tape)
    }

    func embeddings(_ setup: AdapterSetup?, _ embeddings: Variable, context: ForwardContext) -> Variable {
        guard let setup else { return embeddings }
        return invertible(setup, embeddings, context: context) { $0.forward($1, context: context) }
    }

    func beforeDecoder(_ setup: AdapterSetup?, _ states: Variable, context: ForwardContext) -> Variable {
        guard let setup else { return states }
        return invertible(setup, states, context: context) { $0.inverse($1, context: context) }
    }

    private func linearOutput(_ setup: AdapterSetup, slot: LinearSlot, layer: Int, input: Variable, base: Variable,
                              context: ForwardContext) -> Variable {
        switch setup {
        case .single(let name):
            return adapters[name]!.linearDelta(slot, layer: layer, input: input, context: context).map { base + $0 } ?? base
        case .stack(let children):
            return children.reduce(base) { output, child in
                linearOutput(child, slot: slot, layer: layer, input: input, base: output, context: context)
            }
        case .parallel(let children):
            return splitByExamples([input, base], groups: children.count, context: context) { group, parts in
                linearOutput(children[group], slot: slot, layer: layer, input: parts[0], base: parts[1], context: context)
            }
        case .fuse(let names):
            let deltas = names.compactMap { adapters[$0]!.linearDelta(slot, layer: layer, input: input, context: context) }
            guard let fusion = fusions[names.joined(separator: ",")]?[.linear(layer: layer, slot)] else { return deltas.reduce(base, +) }
            return fusion(base, deltas: deltas, context: context)
        case .average:
            return averages[setup.description]!.linearDelta(slot, layer: layer, input: input, context: context).map { base + $0 } ?? base
        }
    }

    private func advance(_ setup: AdapterSetup, subLayer: SubLayer, layer: Int, x: Variable, u: Variable,
                         layerNorm: LayerNorm, context: ForwardContext) -> Variable {
        switch setup {
        case .single(let name):
            return adapters[name]!.subLayerStep(subLayer, layer: layer, residual: x, stream: u, layerNorm: layerNorm, context: context) ?? u
        case .stack(let children):
            return children.reduce(u) { stream, child in
                advance(child, subLayer: subLayer, layer: layer, x: x, u: stream, layerNorm: layerNorm, context: context)
            }
        case .parallel(let children):
            return splitByExamples([x, u], groups: children.count, context: context) { group, parts in
                advance(children[group], subLayer: subLayer, layer: layer, x: parts[0], u: parts[1], layerNorm: layerNorm, context: context)
            }
        case .fuse(let names):
            let deltas = names.compactMap {
                adapters[$0]!.subLayerStep(subLayer, layer: layer, residual: x, stream: u, layerNorm: layerNorm, context: context).map { $0 - u }
            }
            guard let fusion = fusions[names.joined(separator: ",")]?[.subLayer(layer: layer, subLayer)] else { return deltas.reduce(u, +) }
            return fusion(u, deltas: deltas, context: context)
        case .average:
            return averages[setup.description]!.subLayerStep(subLayer, layer: layer, residual: x, stream: u, layerNorm: layerNorm, context: context) ?? u
        }
    }

    private func invertible(_ setup: AdapterSetup, _ states: Variable, context: ForwardContext,
                            _ apply: (InvertibleBlock, Variable) -> Variable) -> Variable {
        switch setup {
        case .single(let name): adapters[name]!.invertible.map { apply($0, states) } ?? states
        case .stack(let children): children.first.map { invertible($0, states, context: context, apply) } ?? states
        case .parallel(let children):
            splitByExamples([states], groups: children.count, context: context) { group, parts in
                invertible(children[group], parts[0], context: context, apply)
            }
        case .fuse: states
        case .average: averages[setup.description]!.invertible.map { apply($0, states) } ?? states
        }
    }

    /// Splits `[rows, d]` tensors into `groups` equal consecutive groups of
    /// examples, runs `body` on each and joins the results.
    private func splitByExamples(_ tensors: [Variable], groups: Int, context: ForwardContext,
                                 _ body: (Int, [Variable]) -> Variable) -> Variable {
        precondition(context.batchSize % groups == 0,
                     "Parallel with \(groups) adapters needs a batch divisible by \(groups), got \(context.batchSize) examples")
        return splitByExamples(tensors, sizes: [Int](repeating: context.batchSize / groups, count: groups), context: context, body)
    }

    /// Splits `[rows, d]` tensors into consecutive groups of `sizes[i]` examples
    /// (each example's rows as `context.exampleLengths` gives them), runs `body`
    /// on each and joins the results (one group: `body` on the tensors themselves).
    func splitByExamples(_ tensors: [Variable], sizes: [Int], context: ForwardContext,
                         _ body: (Int, [Variable]) -> Variable) -> Variable {
        guard sizes.count > 1 else { return body(0, tensors) }
        var (example, start) = (0, 0)
        let outputs = sizes.enumerated().map { group, size in
            let rows = start..<(start + context.exampleLengths[example..<(example + size)].reduce(0, +))
            (example, start) = (example + size, rows.upperBound)
            return body(group, tensors.map { $0.slice(alongAxis: 0, rows) })
        }
        return Variable.concatenate(outputs, alongAxis: 0)
    }
}
