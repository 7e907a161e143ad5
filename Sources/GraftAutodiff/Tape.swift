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
    /// The leaf of each trainable parameter used on this tape, and back.
    private var parameterLeaves: [ObjectIdentifier: Int] = [:]
    private var leafParameters: [Int: Parameter] = [:]

    /// An empty tape.
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
        if let known = parameterLeaves[ObjectIdentifier(parameter)] {
            return Variable(value: parameter.value, node: known, tape: self)
        }
        let leaf = watch(parameter.value)
        parameterLeaves[ObjectIdentifier(parameter)] = leaf.node!
        leafParameters[leaf.node!] = parameter
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
    /// `grad`, returns the gradients of the watched leaves, and clears the
    /// tape, which frees the saved activations.
    ///
    /// A parameter's gradient is complete as soon as backward reaches its leaf
    /// (every use of it was recorded later); `parameterDone` is then called with
    /// it, so an optimizer can update it and drop its gradient right away
    /// instead of holding every gradient until the end (see `AdamW.step(backward:on:)`).
    @discardableResult
    public func backward(_ output: Variable, seed: Tensor? = nil, parameterDone: ((Parameter) -> Void)? = nil) -> Gradients {
        backward(output, seed: seed) { parameter, gradient in
            if parameter.grad == nil { parameter.grad = gradient } else { parameter.grad!.add(gradient) }
            parameterDone?(parameter)
        }
    }

    /// Backward that hands each parameter's complete gradient to `deliver`.
    private func backward(_ output: Variable, seed: Tensor?, deliver: (Parameter, Tensor) -> Void) -> Gradients {
        defer {
            nodes.removeAll(keepingCapacity: true)
            parameterLeaves.removeAll(keepingCapacity: true)
            leafParameters.removeAll(keepingCapacity: true)
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
                if let parameter = leafParameters[i] { deliver(parameter, gradient) } else { leaves[i] = gradient }
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
        return Gradients(values: leaves)
    }

    /// `body(input)`, keeping only `input` for backward: the activations inside
    /// `body` are not saved but recomputed when backward reaches them
    /// (activation checkpointing: one more forward of `body` for a fraction of
    /// the memory).
    ///
    /// `body` runs once now and once in backward, each time on a fresh tape it
    /// must record on, and must compute the same function both times (restore
    /// any random stream it draws from). The trainable parameters it uses get
    /// their gradients on this tape as usual.
    public func recomputing(_ input: Variable, _ body: @escaping (Variable, Tape) -> Variable) -> Variable {
        precondition(input.tape == nil || input.tape === self, "recomputing: the input was recorded on another tape")
        let probe = Tape()
        let output = body(input.isTracked ? probe.watch(input.value) : Variable(input.value), probe)
        let parameters = probe.leafParameters.sorted { $0.key < $1.key }.map(\.value)
        probe.nodes.removeAll()  // frees the probe's activations (pullbacks may hold variables of the probe)
        let saved = input.value
        return record(output.value, inputs: [input] + parameters.map(variable)) { gradient, needed in
            let tape = Tape()
            let x = needed[0] ? tape.watch(saved) : Variable(saved)
            var parameterGradients: [ObjectIdentifier: Tensor] = [:]
            let gradients = tape.backward(body(x, tape), seed: gradient, deliver: { parameterGradients[ObjectIdentifier($0)] = $1 })
            return [gradients[x]] + parameters.map { parameterGradients[ObjectIdentifier($0)] }
        }
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
