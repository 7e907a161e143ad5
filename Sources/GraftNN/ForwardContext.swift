import GraftAutodiff
import GraftTensor

/// What a forward pass needs besides its input: the tape to record on (none
/// for inference) and, when training, the random stream for dropout.
public final class ForwardContext {
    /// The tape the pass records on for backward (trainable parameters become tracked variables);
    /// `nil` for inference, where every parameter is a constant.
    public let tape: Tape?
    /// Whether dropout is active (in the encoder, the heads and the adapters).
    public let isTraining: Bool
    /// The random stream that dropout masks are drawn from, advanced by each draw.
    public var generator: SeededGenerator
    /// The adapters grafted onto the model for this pass, if any.
    public let adapters: (any EncoderAdapters)?
    /// Activation checkpointing: when recording, each encoder layer keeps only
    /// its input and recomputes its activations in backward. Training then
    /// holds one layer's activations instead of all of them, for one more
    /// forward pass of the encoder layers. The gradients are the same.
    public var recomputesLayers = false
    /// The rows of each example in the batch of this pass; the encoder sets them from its input.
    public var exampleLengths = [1]
    /// Examples in the batch of this pass.
    public var batchSize: Int { exampleLengths.count }

    /// Inference: no tape, no dropout.
    public static func inference(adapters: (any EncoderAdapters)? = nil) -> ForwardContext {
        ForwardContext(tape: nil, isTraining: false, seed: 0, adapters: adapters)
    }

    /// A pass recording on `tape` (none for inference), with dropout if `isTraining`, its masks drawn
    /// from a `SeededGenerator` seeded with `seed`, and `adapters` applied to the encoder.
    public convenience init(tape: Tape?, isTraining: Bool, seed: UInt64, adapters: (any EncoderAdapters)? = nil) {
        self.init(tape: tape, isTraining: isTraining, generator: SeededGenerator(seed: seed), adapters: adapters)
    }

    private init(tape: Tape?, isTraining: Bool, generator: SeededGenerator, adapters: (any EncoderAdapters)?) {
        self.tape = tape
        self.isTraining = isTraining
        self.generator = generator
        self.adapters = adapters
    }

    /// `body(x)` for one encoder layer, recomputed in backward if `recomputesLayers`
    /// (both runs draw the same dropout masks).
    public func layer(_ x: Variable, _ body: @escaping (Variable, ForwardContext) -> Variable) -> Variable {
        guard recomputesLayers, let tape else { return body(x, self) }
        let start = generator
        let (isTraining, adapters, exampleLengths) = (isTraining, adapters, exampleLengths)
        var end = start
        let output = tape.recomputing(x) { x, tape in
            let inner = ForwardContext(tape: tape, isTraining: isTraining, generator: start, adapters: adapters)
            inner.exampleLengths = exampleLengths
            defer { end = inner.generator }
            return body(x, inner)
        }
        generator = end
        return output
    }

    /// Inverted dropout when training; the identity otherwise.
    public func dropout(_ x: Variable, probability: Float) -> Variable {
        guard isTraining, probability > 0 else { return x }
        return x.dropout(probability: probability, generator: &generator)
    }

    /// A compact dropout mask of `count` elements from this pass's random stream
    /// when training with `probability > 0`; `nil` otherwise.
    public func dropoutMask(count: Int, probability: Float) -> DropoutMask? {
        guard isTraining, probability > 0 else { return nil }
        return DropoutMask(count: count, probability: probability, generator: &generator)
    }

    /// The step variable of a parameter (tracked only on a tape and if trainable).
    public func variable(_ parameter: Parameter) -> Variable { tape.variable(parameter) }

    /// Applies linear slot `slot` of block `layer`, with its adapters.
    public func apply(_ linear: Linear, _ slot: LinearSlot, layer: Int, to x: Variable) -> Variable {
        let base = linear(x, tape: tape)
        return adapters?.linear(slot, layer: layer, input: x, base: base, context: self) ?? base
    }
}

/// Children named `0`, `1`, ... (as PyTorch's `nn.ModuleList`).
public final class ModuleList<Element: Module>: Module {
    /// The modules, in order; `elements[i]` is the child named `i`.
    public let elements: [Element]
    /// A list of `elements`, named by their index.
    public init(_ elements: [Element]) { self.elements = elements }
    /// Each element under its index (`0`, `1`, ...).
    public var children: [(name: String, module: any Module)] {
        elements.enumerated().map { (String($0.offset), $0.element) }
    }
}
