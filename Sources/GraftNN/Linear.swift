import GraftAutodiff
import GraftTensor

/// `y = x Wᵀ + b` with `W` stored `[out, in]` as in PyTorch checkpoints.
public final class Linear: Module {
    /// `W`, `[out, in]`.
    public let weight: Parameter
    /// `b`, `[out]`; nil for a layer without bias.
    public let bias: Parameter?

    /// Wraps existing weights (`[out, in]`) and an optional bias (`[out]`).
    public init(weight: Tensor, bias: Tensor?) {
        precondition(weight.rank == 2, "Linear: weight must be [out, in], got \(weight.shape)")
        if let bias { precondition(bias.shape == [weight.shape[0]], "Linear: bias \(bias.shape) must be [\(weight.shape[0])]") }
        self.weight = Parameter(weight)
        self.bias = bias.map { Parameter($0) }
    }

    /// A freshly initialised layer: weights `N(0, std²)`, zero bias.
    public convenience init(inputSize: Int, outputSize: Int, bias: Bool = true, standardDeviation: Float = 0.02,
                            generator: inout SeededGenerator) {
        self.init(weight: .normal(shape: [outputSize, inputSize], standardDeviation: standardDeviation, generator: &generator),
                  bias: bias ? Tensor(zeros: [outputSize]) : nil)
    }

    /// Features in, the last axis of `x` (`in` of the `[out, in]` weight).
    public var inputSize: Int { weight.value.shape[1] }
    /// Features out, the last axis of the result (`out` of the `[out, in]` weight).
    public var outputSize: Int { weight.value.shape[0] }

    /// `weight`, then `bias` if the layer has one.
    public var localParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// Applies the layer to `x` (`[..., in]`), recording on `tape` if given.
    public func callAsFunction(_ x: Variable, tape: Tape? = nil) -> Variable {
        Variable.linear(x, weight: tape.variable(weight), bias: bias.map { tape.variable($0) })
    }
}

/// Layer normalisation over the last axis with learned scale and shift.
public final class LayerNorm: Module {
    /// The scale (gamma), `[size]`.
    public let weight: Parameter
    /// The shift (beta), `[size]`.
    public let bias: Parameter
    /// Added to the variance before its square root (`layer_norm_eps`; default `1e-12`).
    public let epsilon: Float

    /// Normalisation over `size` features; the weight starts at 1, the bias at 0.
    public init(size: Int, epsilon: Float = 1e-12) {
        weight = Parameter(Tensor(repeating: 1, shape: [size]))
        bias = Parameter(Tensor(zeros: [size]))
        self.epsilon = epsilon
    }

    /// `weight` and `bias`, as in Hugging Face (not `gamma` / `beta`).
    public var localParameters: [(name: String, parameter: Parameter)] { [("weight", weight), ("bias", bias)] }

    /// Each row of `x` normalised to mean 0 and variance 1, then scaled by `weight` and shifted by `bias`.
    public func callAsFunction(_ x: Variable, tape: Tape? = nil) -> Variable {
        x.layerNorm(gamma: tape.variable(weight), beta: tape.variable(bias), epsilon: epsilon)
    }
}

/// A lookup table of `[count, size]` vectors.
public final class Embedding: Module {
    /// The table, `[count, size]`: row `i` is the vector of id `i`.
    public let weight: Parameter

    /// Wraps an existing `[count, size]` table as the (trainable) weight.
    public init(table: Tensor) {
        precondition(table.rank == 2, "Embedding: table must be [count, size], got \(table.shape)")
        weight = Parameter(table)
    }

    /// The table, as `weight`.
    public var localParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }

    /// The rows for `ids`: shape `[ids.count, size]`.
    public func callAsFunction(_ ids: [Int], tape: Tape? = nil) -> Variable {
        Variable.gatherRows(tape.variable(weight), ids)
    }
}
