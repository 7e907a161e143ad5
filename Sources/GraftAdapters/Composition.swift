import GraftAutodiff
import GraftNN
import GraftTensor

/// Which adapters act in a forward pass, and how they combine.
public indirect enum AdapterSetup: Codable, Sendable, Equatable, CustomStringConvertible {
    /// One adapter.
    case single(String)
    /// Adapters applied in order (a language adapter under a task adapter):
    /// at a sub-layer each transforms the stream the previous one produced; at a
    /// linear slot their deltas add; only the first one's invertible block acts.
    case stack([AdapterSetup])
    /// Different adapters for different examples of one batch: the examples are
    /// split into as many equal, consecutive groups as there are children.
    case parallel([AdapterSetup])
    /// AdapterFusion: attention, per token, over the outputs of several adapters,
    /// with trainable query, key and value projections.
    case fuse([String])
    /// A weighted average of adapters' weights (LoRA: of their `ΔW`); the
    /// adapters must have the same method and shapes.
    case average([String], weights: [Float])

    /// Every adapter name the setup mentions, in order.
    public var names: [String] {
        switch self {
        case .single(let name): [name]
        case .stack(let children), .parallel(let children): children.flatMap(\.names)
        case .fuse(let names), .average(let names, _): names
        }
    }

    /// The setup written out: `name`, `Stack(a, b)`, `Parallel(a, b)`, `Fuse(a, b)`, `Average(a: 0.5, b: 0.5)`.
    public var description: String {
        switch self {
        case .single(let name): name
        case .stack(let children): "Stack(\(children.map(\.description).joined(separator: ", ")))"
        case .parallel(let children): "Parallel(\(children.map(\.description).joined(separator: ", ")))"
        case .fuse(let names): "Fuse(\(names.joined(separator: ", ")))"
        case .average(let names, let weights):
            "Average(\(zip(names, weights).map { "\($0): \($1)" }.joined(separator: ", ")))"
        }
    }
}

/// A setup that cannot be activated.
public enum CompositionError: Error, CustomStringConvertible, Equatable {
    /// A setup, `merge`, `unmerge` or `mergedEncoderCopy` names an adapter the model does not have; `known` lists those it has.
    case unknownAdapter(String, known: [String])
    /// `add` under a name that is already attached.
    case duplicateName(String)
    /// The setup (as written) cannot be composed, for `reason` (a side network in a composition, too few adapters to fuse, ...).
    case undefined(setup: String, reason: String)
    /// The adapter's update is folded into the encoder's weights (`GraftedModel.merge`).
    case merged(String)
    /// `unmerge` of an adapter that is not merged.
    case notMerged(String)
    /// `merge` of an adapter that is not a change of linear weights (bottleneck adapters).
    case notMergeable(String, method: String)

    /// A one-line message naming the adapter or setup and what is wrong with it.
    public var description: String {
        switch self {
        case let .unknownAdapter(name, known):
            "no adapter named \"\(name)\"; " + (known.isEmpty ? "the model has no adapters" : "the model has: \(known.sorted().joined(separator: ", "))")
        case let .duplicateName(name): "an adapter named \"\(name)\" is already attached"
        case let .undefined(setup, reason): "\(setup) is not defined: \(reason)"
        case let .merged(name):
            "adapter \"\(name)\" is merged into the encoder's weights; unmerge it before activating or merging it again"
        case let .notMerged(name): "adapter \"\(name)\" is not merged"
        case let .notMergeable(name, method):
            "adapter \"\(name)\" (\(method)) cannot be merged: it is not a change of linear weights"
        }
    }
}

/// AdapterFusion parameters for one attachment point where at least two fused adapters act: query, key and
/// value projections, as wide as the point's output (the hidden size at a sub-layer, the slot's output size
/// at a linear slot).
public final class FusionLayer: Module {
    /// The projections, `[width, width]` with bias: `query` reads the stream `u` (at a linear slot, the
    /// slot's output so far), `key` and `value` each adapter's delta `d_i`; `value` starts as the identity.
    public let query: Linear, key: Linear, value: Linear

    init(hiddenSize: Int, generator: inout SeededGenerator) {
        query = Linear(inputSize: hiddenSize, outputSize: hiddenSize, generator: &generator)
        key = Linear(inputSize: hiddenSize, outputSize: hiddenSize, generator: &generator)
        // The value projection starts as the identity, as in AdapterHub.
        value = Linear(weight: Tensor(shape: [hiddenSize, hiddenSize]) { $0 % (hiddenSize + 1) == 0 ? 1 : 0 },
                       bias: Tensor(zeros: [hiddenSize]))
    }

    /// `query`, `key` and `value`: parameters `query.weight`, `query.bias`, ...
    public var children: [(name: String, module: any Module)] { [("query", query), ("key", key), ("value", value)] }

    /// `u + Σ_i p_i V(d_i)` with `p = softmax_i(Q(u) · K(d_i))`, per row.
    func callAsFunction(_ u: Variable, deltas: [Variable], context: ForwardContext) -> Variable {
        let rows = u.shape[0], width = u.shape[1]
        let q = query(u, tape: context.tape).reshaped([rows, 1, width])
        let stacked = Variable.concatenate(deltas.map { $0.reshaped([rows, 1, width]) }, alongAxis: 1)  // [rows, n, d]
        let keys = key(stacked, tape: context.tape)
        let scores = Variable.matmul(q, keys, transposeB: true).softmax()  // [rows, 1, n]
        let mixed = Variable.matmul(scores, value(stacked, tape: context.tape))  // [rows, 1, d]
        return u + mixed.reshaped([rows, width])
    }
}
