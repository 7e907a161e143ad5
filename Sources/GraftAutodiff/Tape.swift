import GraftTensor

/// Records differentiable operations during one step so that `backward` can
/// propagate gradients in reverse order.
///
/// Operations append themselves as they run, so the tape is already in
/// topological order and backward is a reverse loop. An operation is recorded
/// only when one of its inputs needs a gradient: frozen weights and constants
/// cost nothing. Inference passes no tape at all.
public final class Tape {
    /// Given the gradient of the output and which inputs need a gradient,
    /// returns one gradient per input (`nil` where not needed).
    public typealias Pullback = (_ gradient: Tensor, _ needed: [Bool]) -> [Tensor?]

    struct Node {
        var inputs: [Int]
        var pullback: Pullback?
    }

    var nodes: [Node] = []
    private var parameterNodes: [ObjectIdentifier: (node: Int, parameter: Parameter)] = [:]

    public init() {}

    /// Number of recorded nodes (leaves and operations).
    public var count: Int { nodes.count }

    /// A leaf whose gradient `backward` will report (an input to differentiate
    /// with respect to).
    public func watch(_ value: Tensor) -> Variable {
        nodes.append(Node(inputs: [], pullback: nil))
        return Variable(value: value, node: nodes.count - 1, tape: self)
    }

    /// The variable for a parameter in this step: a leaf if the parameter is
    /// trainable, a constant otherwise. Repeated calls return the same leaf, so
    /// tied weights accumulate one gradient.
    public func variable(_ parameter: Parameter) -> Variable {
        guard parameter.isTrainable else { return Variable(parameter.value) }
        if let known = parameterNodes[ObjectIdentifier(parameter)] {
            return Variable(value: parameter.value, node: known.node, tape: self)
        }
        let leaf = watch(parameter.value)
        parameterNodes[ObjectIdentifier(parameter)] = (leaf.node!, parameter)
        return leaf
    }

    /// Records an operation whose inputs are `inputs`; returns a constant if no
    /// input needs a gradient.
    func record(_ value: Tensor, inputs: [Variable], pullback: @escaping Pullback) -> Variable {
        let ids = inputs.map(\.node)
        guard ids.contains(where: { $0 != nil }) else { return Variable(value) }
        nodes.append(Node(inputs: ids.map { $0 ?? -1 }, pullback: pullback))
        return Variable(value: value, node: nodes.count - 1, tape: self)
    }

    /// Propagates the gradient of `output` (seeded with ones, or `seed`) back
    /// through the tape. Adds the gradients of trainable parameters to their
    /// `grad`, returns the gradients of all leaves, and clears the tape, which
    /// frees the saved activations.
    @discardableResult
    public func backward(_ output: Variable, seed: Tensor? = nil) -> Gradients {
        defer {
            nodes.removeAll(keepingCapacity: true)
            parameterNodes.removeAll(keepingCapacity: true)
        }
        guard let root = output.node else { return Gradients(values: [:]) }
        precondition(output.tape === self, "backward: the output was recorded on another tape")
        let start = seed ?? Tensor(repeating: 1, shape: output.value.shape)
        precondition(start.shape == output.value.shape, "backward: seed \(start.shape) does not match output \(output.value.shape)")
        var grads = [Tensor?](repeating: nil, count: root + 1)
        grads[root] = start
        var leaves: [Int: Tensor] = [:]
        for i in stride(from: root, through: 0, by: -1) {
            guard let gradient = grads[i] else { continue }
            grads[i] = nil
            guard let pullback = nodes[i].pullback else {
                leaves[i] = gradient
                continue
            }
            nodes[i].pullback = nil  // frees the activations the closure saved
            let inputs = nodes[i].inputs
            let inputGrads = pullback(gradient, inputs.map { $0 >= 0 })
            for (input, g) in zip(inputs, inputGrads) where input >= 0 {
                guard let g else { continue }
                if grads[input] == nil { grads[input] = g } else { grads[input]!.add(g) }
            }
        }
        for (node, parameter) in parameterNodes.values {
            guard let g = leaves[node] else { continue }
            if parameter.grad == nil { parameter.grad = g } else { parameter.grad!.add(g) }
        }
        return Gradients(values: leaves)
    }
}

/// The gradients of the leaves of a tape after `backward`.
public struct Gradients {
    let values: [Int: Tensor]

    /// The gradient of a watched leaf, or `nil` if the output did not depend on it.
    public subscript(_ leaf: Variable) -> Tensor? {
        guard let node = leaf.node else { return nil }
        return values[node]
    }
}

/// A tensor flowing through differentiable operations.
///
/// A variable with a tape and node is tracked; one without is a constant
/// (inference, frozen weights) and its operations record nothing.
public struct Variable {
    /// The value computed in the forward pass.
    public let value: Tensor
    let node: Int?
    let tape: Tape?

    init(value: Tensor, node: Int?, tape: Tape?) {
        self.value = value
        self.node = node
        self.tape = tape
    }

    /// A constant: no gradient flows into it.
    public init(_ value: Tensor) { self.init(value: value, node: nil, tape: nil) }

    /// Whether a gradient will flow into this variable.
    public var isTracked: Bool { node != nil }
    /// Shape of the value.
    public var shape: [Int] { value.shape }
}

/// Records `value` as the output of an operation on `inputs`, on their tape if any
/// input is tracked; otherwise returns a constant without building the pullback.
@inline(__always)
func differentiable(_ value: Tensor, _ inputs: Variable..., pullback: @escaping Tape.Pullback) -> Variable {
    guard let tape = inputs.lazy.compactMap(\.tape).first else { return Variable(value) }
    precondition(inputs.allSatisfy { $0.tape == nil || $0.tape === tape }, "operation mixes variables of different tapes")
    return tape.record(value, inputs: inputs, pullback: pullback)
}
