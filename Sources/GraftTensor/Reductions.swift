/// Reductions along one axis.
extension Tensor {
    /// Reduces along `axis` with `combine`, starting from `initial`.
    @inlinable
    func reduce(alongAxis axis: Int, keepingDimension keep: Bool, initial: Float,
                _ combine: (Float, Float) -> Float) -> Tensor {
        let axis = self.axis(axis)
        let (outer, length, inner) = splitAround(shape, axis: axis)
        var outShape = shape
        if keep { outShape[axis] = 1 } else { outShape.remove(at: axis) }
        var out = Tensor(repeating: initial, shape: outShape)
        out.scalars.withUnsafeMutableBufferPointer { po in
            scalars.withUnsafeBufferPointer { ps in
                for o in 0..<outer {
                    for l in 0..<length {
                        let src = (o * length + l) * inner
                        for i in 0..<inner { po[o * inner + i] = combine(po[o * inner + i], ps[src + i]) }
                    }
                }
            }
        }
        return out
    }

    /// Sum along `axis`.
    public func sum(alongAxis axis: Int, keepingDimension keep: Bool = false) -> Tensor {
        reduce(alongAxis: axis, keepingDimension: keep, initial: 0, +)
    }

    /// Mean along `axis`.
    public func mean(alongAxis axis: Int, keepingDimension keep: Bool = false) -> Tensor {
        sum(alongAxis: axis, keepingDimension: keep) * (1 / Float(shape[self.axis(axis)]))
    }

    /// Maximum along `axis`.
    public func max(alongAxis axis: Int, keepingDimension keep: Bool = false) -> Tensor {
        reduce(alongAxis: axis, keepingDimension: keep, initial: -.infinity) { Swift.max($0, $1) }
    }

    /// Sum of all elements, accumulated in `Double`.
    public func sum() -> Float {
        var total = 0.0
        for x in scalars { total += Double(x) }
        return Float(total)
    }

    /// Mean of all elements.
    public func mean() -> Float { count == 0 ? .nan : sum() / Float(count) }
}
