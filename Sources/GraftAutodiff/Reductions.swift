import GraftTensor

extension Variable {
    /// Sum along `axis`.
    public func sum(alongAxis axis: Int, keepingDimension keep: Bool = false) -> Variable {
        let axis = value.axis(axis)
        var kept = shape
        kept[axis] = 1
        let inputShape = shape
        return differentiable(value.sum(alongAxis: axis, keepingDimension: keep), self) { g, _ in
            [Tensor(zeros: inputShape) + g.reshaped(kept)]
        }
    }

    /// Mean along `axis`.
    public func mean(alongAxis axis: Int, keepingDimension keep: Bool = false) -> Variable {
        sum(alongAxis: axis, keepingDimension: keep) * (1 / Float(shape[value.axis(axis)]))
    }

    /// Sum of all elements, as a scalar.
    public func sum() -> Variable {
        let inputShape = shape
        return differentiable(Tensor(scalar: value.sum()), self) { g, _ in
            [Tensor(repeating: g.scalar, shape: inputShape)]
        }
    }

    /// Mean of all elements, as a scalar.
    public func mean() -> Variable { sum() * (1 / Float(value.count)) }

    /// Maximum along `axis`; the gradient goes to the first maximal element.
    public func max(alongAxis axis: Int, keepingDimension keep: Bool = false) -> Variable {
        let axis = value.axis(axis)
        let maxima = value.max(alongAxis: axis, keepingDimension: true)
        let (outer, length, inner) = splitAround(shape, axis: axis)
        let x = value
        let output = keep ? maxima : maxima.reshaped(shape.enumerated().filter { $0.offset != axis }.map(\.element))
        return differentiable(output, self) { g, _ in
            var dx = Tensor(zeros: x.shape)
            for o in 0..<outer {
                for i in 0..<inner {
                    let target = maxima.scalars[o * inner + i]
                    for l in 0..<length where x.scalars[(o * length + l) * inner + i] == target {
                        dx.scalars[(o * length + l) * inner + i] = g.scalars[o * inner + i]
                        break
                    }
                }
            }
            return [dx]
        }
    }
}
