import GraftTensor

/// A named, shared, mutable weight. Modules and optimizers hold the same
/// object, so tied weights are one parameter.
public final class Parameter {
    /// The current value.
    public var value: Tensor
    /// The accumulated gradient since the last `zeroGradient()`; `nil` if none.
    public var grad: Tensor?
    /// Frozen parameters get no tape node, no gradient and no weight-gradient GEMM.
    public var isTrainable: Bool

    /// A parameter holding `value`; pass `isTrainable: false` to freeze it.
    public init(_ value: Tensor, isTrainable: Bool = true) {
        self.value = value
        self.isTrainable = isTrainable
    }

    /// Drops the accumulated gradient.
    public func zeroGradient() { grad = nil }
}
