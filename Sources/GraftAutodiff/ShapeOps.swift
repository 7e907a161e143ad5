import GraftTensor

/// Reshaping, permuting, slicing, joining and gathering.
extension Variable {
    /// The same elements with another shape; one dimension may be `-1`. See `Tensor.reshaped`.
    public func reshaped(_ newShape: [Int]) -> Variable {
        let inputShape = shape
        return differentiable(value.reshaped(newShape), self) { g, _ in [g.reshaped(inputShape)] }
    }

    /// Reorders dimensions; see `Tensor.permuted`.
    public func permuted(_ order: [Int]) -> Variable {
        differentiable(value.permuted(order), self) { g, _ in [g.permuted(Tensor.inversePermutation(order))] }
    }

    /// The range `range` of `axis`.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Variable {
        let axis = value.axis(axis)
        let inputShape = shape
        return differentiable(value.slice(alongAxis: axis, range), self) { g, _ in
            var before = inputShape, after = inputShape
            before[axis] = range.lowerBound
            after[axis] = inputShape[axis] - range.upperBound
            return [Tensor.concatenate([Tensor(zeros: before), g, Tensor(zeros: after)], alongAxis: axis)]
        }
    }

    /// Joins variables along `axis`.
    public static func concatenate(_ parts: [Variable], alongAxis axis: Int) -> Variable {
        let joined = Tensor.concatenate(parts.map(\.value), alongAxis: axis)
        let axis = joined.axis(axis)
        let sizes = parts.map { $0.shape[axis] }
        guard let tape = parts.lazy.compactMap(\.tape).first else { return Variable(joined) }
        return tape.record(joined, inputs: parts) { g, needed in
            zip(g.split(alongAxis: axis, sizes: sizes), needed).map { $1 ? $0 : nil }
        }
    }

    /// Splits along `axis` into pieces of the given sizes.
    public func split(alongAxis axis: Int, sizes: [Int]) -> [Variable] {
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return slice(alongAxis: axis, start..<(start + size))
        }
    }

    /// Embedding lookup: rows of a `[rows, width]` table; the pullback
    /// scatter-adds into the table.
    public static func gatherRows(_ table: Variable, _ indices: [Int]) -> Variable {
        let tableShape = table.shape
        return differentiable(table.value.gatherRows(indices), table) { g, _ in
            var dTable = Tensor(zeros: tableShape)
            dTable.scatterAddRows(indices, g)
            return [dTable]
        }
    }
}
