/// Gathering, scattering, slicing, joining and permuting.
extension Tensor {
    /// Rows of a `[rows, width]` table picked by `indices`: shape `[indices.count, width]`.
    public func gatherRows(_ indices: [Int]) -> Tensor {
        precondition(rank == 2, "gatherRows: table must be 2-D, got \(shape)")
        let (rows, width) = (shape[0], shape[1])
        var out = Tensor(uninitialized: [indices.count, width])
        for row in indices { precondition(row >= 0 && row < rows, "gatherRows: index \(row) out of range 0..<\(rows)") }
        out.scalars.withUnsafeMutableBufferPointer { po in
            scalars.withUnsafeBufferPointer { ps in
                Parallel.forRows(indices.count, width: width) { range in
                    for i in range { (po.baseAddress! + i * width).update(from: ps.baseAddress! + indices[i] * width, count: width) }
                }
            }
        }
        return out
    }

    /// Adds each row of `values` (`[indices.count, width]`) into row
    /// `indices[i]` of `self` (the adjoint of `gatherRows`).
    public mutating func scatterAddRows(_ indices: [Int], _ values: Tensor) {
        let width = shape[1]
        precondition(values.shape == [indices.count, width],
                     "scatterAddRows: values \(values.shape) must be [\(indices.count), \(width)]")
        scalars.withUnsafeMutableBufferPointer { pt in
            values.scalars.withUnsafeBufferPointer { pv in
                // Rows repeated in `indices` add in order.
                Parallel.forColumns(width, rows: indices.count) { columns in
                    for (i, row) in indices.enumerated() {
                        for j in columns { pt[row * width + j] += pv[i * width + j] }
                    }
                }
            }
        }
    }

    /// The range `range` of `axis`.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let axis = self.axis(axis)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[axis],
                     "slice: range \(range) out of bounds for axis \(axis) of \(shape)")
        let (outer, length, inner) = splitAround(shape, axis: axis)
        var outShape = shape
        outShape[axis] = range.count
        var out = Tensor(zeros: outShape)
        let chunk = range.count * inner
        for o in 0..<outer {
            let src = (o * length + range.lowerBound) * inner
            out.scalars.replaceSubrange((o * chunk)..<((o + 1) * chunk), with: scalars[src..<(src + chunk)])
        }
        return out
    }

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concatenate(_ parts: [Tensor], alongAxis axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate: no tensors")
        let axis = parts[0].axis(axis)
        var outShape = parts[0].shape
        outShape[axis] = 0
        for part in parts {
            var probe = part.shape
            probe[axis] = 0
            precondition(probe == outShape, "concatenate: shapes \(parts.map(\.shape)) differ outside axis \(axis)")
        }
        outShape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        let (outer, _, inner) = splitAround(outShape, axis: axis)
        var scalars = [Float]()
        scalars.reserveCapacity(Tensor.count(of: outShape))
        for o in 0..<outer {
            for part in parts {
                let chunk = part.shape[axis] * inner
                scalars.append(contentsOf: part.scalars[(o * chunk)..<((o + 1) * chunk)])
            }
        }
        return Tensor(shape: outShape, scalars: scalars)
    }

    /// Splits along `axis` into pieces of the given sizes (the inverse of `concatenate`).
    public func split(alongAxis axis: Int, sizes: [Int]) -> [Tensor] {
        let axis = self.axis(axis)
        precondition(sizes.reduce(0, +) == shape[axis], "split: sizes \(sizes) do not add up to \(shape[axis]) (axis \(axis) of \(shape))")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return slice(alongAxis: axis, start..<(start + size))
        }
    }

    /// Reorders the dimensions: output dimension `i` is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permuted: \(order) is not a permutation of 0..<\(rank)")
        if order == Array(0..<rank) { return self }
        let outShape = order.map { shape[$0] }
        var inStrides = [Int](repeating: 1, count: rank)
        for d in stride(from: rank - 2, through: 0, by: -1) { inStrides[d] = inStrides[d + 1] * shape[d + 1] }
        let strides = order.map { inStrides[$0] }
        var out = Tensor(zeros: outShape)
        let last = rank - 1
        let lastLength = outShape[last], lastStride = strides[last]
        var index = [Int](repeating: 0, count: rank)
        var offset = 0
        out.scalars.withUnsafeMutableBufferPointer { po in
            scalars.withUnsafeBufferPointer { ps in
                var i = 0
                while i < po.count {
                    for j in 0..<lastLength { po[i + j] = ps[offset + j * lastStride] }
                    i += lastLength
                    var d = last - 1
                    while d >= 0 {
                        index[d] += 1
                        offset += strides[d]
                        if index[d] < outShape[d] { break }
                        offset -= strides[d] * outShape[d]
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        return out
    }

    /// The inverse of a permutation given to `permuted`.
    public static func inversePermutation(_ order: [Int]) -> [Int] {
        var inverse = [Int](repeating: 0, count: order.count)
        for (i, d) in order.enumerated() { inverse[d] = i }
        return inverse
    }
}
