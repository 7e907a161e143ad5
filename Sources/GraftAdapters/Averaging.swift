import GraftAutodiff
import GraftNN
import GraftTensor

/// The weighted sum of linear-slot adapters' deltas, `Σ w_i ΔW_i x`: exactly the
/// weighted average of their `ΔW` (LoRA, MoS), without forming a new low-rank factorisation.
final class WeightedDeltaAdapter: Adapter {
    let parts: [(adapter: any Adapter, weight: Float)]
    let method: String

    init(_ parts: [(adapter: any Adapter, weight: Float)]) {
        self.parts = parts
        method = parts[0].adapter.method
    }

    var attachmentPoints: Set<AttachmentPoint> { parts.reduce(into: []) { $0.formUnion($1.adapter.attachmentPoints) } }

    func linearDelta(_ slot: LinearSlot, layer: Int, input: Variable, context: ForwardContext) -> Variable? {
        let deltas = parts.compactMap { part in
            part.adapter.linearDelta(slot, layer: layer, input: input, context: context).map { $0 * part.weight }
        }
        return deltas.isEmpty ? nil : deltas.dropFirst().reduce(deltas[0], +)
    }
}

extension GraftedModel {
    /// The adapter `Average(names, weights)` stands for.
    func averagedAdapter(_ parts: [any Adapter], weights: [Float], setup: AdapterSetup) throws -> any Adapter {
        let methods = Set(parts.map(\.method))
        guard methods.count == 1 else {
            throw CompositionError.undefined(setup: setup.description, reason: "it mixes methods \(methods.sorted().joined(separator: ", "))")
        }
        if let bottlenecks = parts as? [BottleneckAdapter] {
            guard Set(bottlenecks.map { $0.namedParameters().map { "\($0.name)\($0.parameter.value.shape)" } }).count == 1 else {
                throw CompositionError.undefined(setup: setup.description, reason: "the adapters' weights differ in shape")
            }
            return BottleneckAdapter(averaging: bottlenecks, weights: weights, model: encoder.configuration)
        }
        guard parts.allSatisfy({ $0.attachmentPoints.allSatisfy { if case .linear = $0 { true } else { false } } }) else {
            throw CompositionError.undefined(setup: setup.description, reason: "\(parts[0].method) adapters have no averageable weights")
        }
        return WeightedDeltaAdapter(Array(zip(parts, weights)).map { (adapter: $0.0, weight: $0.1) })
    }
}
