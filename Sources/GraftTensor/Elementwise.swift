import CKernels

/// Element-wise arithmetic with NumPy-style broadcasting.
extension Tensor {
    /// The shape two shapes broadcast to (dimensions aligned from the right;
    /// each pair must be equal or contain a 1).
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = Swift.max(a.count, b.count)
        let pa = [Int](repeating: 1, count: rank - a.count) + a
        let pb = [Int](repeating: 1, count: rank - b.count) + b
        return zip(pa, pb).map { x, y in
            precondition(x == y || x == 1 || y == 1, "broadcast: shapes \(a) and \(b) are incompatible")
            return x == 1 ? y : x
        }
    }

    /// Applies `op` element-wise after broadcasting both operands.
    @inlinable
    public static func combine(_ a: Tensor, _ b: Tensor, _ op: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape {
            var out = Tensor(uninitialized: a.shape)
            a.scalars.withUnsafeBufferPointer { pa in
                b.scalars.withUnsafeBufferPointer { pb in
                    out.scalars.withUnsafeMutableBufferPointer { po in
                        Parallel.forRanges(po.count) { range in
                            for i in range { po[i] = op(pa[i], pb[i]) }
                        }
                    }
                }
            }
            return out
        }
        let shape = broadcastShape(a.shape, b.shape)
        // Fast path: `b` repeats along the leading dimensions of `a` (bias, scalar).
        if shape == a.shape, b.count > 0, a.shape.suffix(b.rank) == b.shape[...] || b.count == 1 {
            var out = Tensor(uninitialized: a.shape)
            let period = b.count
            a.scalars.withUnsafeBufferPointer { pa in
                b.scalars.withUnsafeBufferPointer { pb in
                    out.scalars.withUnsafeMutableBufferPointer { po in
                        Parallel.forRows(po.count / period, width: period) { rows in
                            for row in rows {
                                let base = row * period
                                for j in 0..<period { po[base + j] = op(pa[base + j], pb[j]) }
                            }
                        }
                    }
                }
            }
            return out
        }
        let ia = broadcastOffsets(from: a.shape, to: shape)
        let ib = broadcastOffsets(from: b.shape, to: shape)
        var scalars = [Float](repeating: 0, count: ia.count)
        for i in 0..<scalars.count { scalars[i] = op(a.scalars[ia[i]], b.scalars[ib[i]]) }
        return Tensor(shape: shape, scalars: scalars)
    }

    /// For each element of `target`, the offset of the element of a tensor of
    /// shape `source` that broadcasts onto it.
    public static func broadcastOffsets(from source: [Int], to target: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: target.count - source.count) + source
        var strides = [Int](repeating: 0, count: target.count)
        var step = 1
        for d in stride(from: target.count - 1, through: 0, by: -1) {
            strides[d] = padded[d] == 1 ? 0 : step
            step *= padded[d]
        }
        let total = Tensor.count(of: target)
        var offsets = [Int](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: target.count)
        var offset = 0
        for i in 0..<total {
            offsets[i] = offset
            var d = target.count - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < target[d] { break }
                offset -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return offsets
    }

    /// Sums a broadcast result back to `shape` (the adjoint of broadcasting).
    public func summed(toShape target: [Int]) -> Tensor {
        if shape == target { return self }
        var out = Tensor(zeros: target)
        if target.count <= rank, shape.suffix(target.count) == target[...] || out.count == 1 {
            let period = out.count
            out.scalars.withUnsafeMutableBufferPointer { po in
                scalars.withUnsafeBufferPointer { ps in
                    var i = 0
                    while i < ps.count {
                        for j in 0..<period { po[j] += ps[i + j] }
                        i += period
                    }
                }
            }
            return out
        }
        let offsets = Tensor.broadcastOffsets(from: target, to: shape)
        for i in 0..<count { out.scalars[offsets[i]] += scalars[i] }
        return out
    }

    /// Applies `op` to every element.
    @inlinable
    public func map(_ op: (Float) -> Float) -> Tensor {
        var out = Tensor(uninitialized: shape)
        scalars.withUnsafeBufferPointer { p in
            out.scalars.withUnsafeMutableBufferPointer { po in
                Parallel.forRanges(p.count) { range in
                    for i in range { po[i] = op(p[i]) }
                }
            }
        }
        return out
    }

    /// `a + b` element-wise, broadcasting (see `broadcastShape`).
    public static func + (a: Tensor, b: Tensor) -> Tensor { combine(a, b, kernel: graft_add, +) }
    /// `a - b` element-wise, broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor { combine(a, b, kernel: graft_subtract, -) }
    /// `a * b` element-wise, broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor { combine(a, b, kernel: graft_multiply, *) }
    /// `a / b` element-wise, broadcasting.
    public static func / (a: Tensor, b: Tensor) -> Tensor { combine(a, b, kernel: graft_divide, /) }
    /// Every element of `a` times `s`.
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, offset: 0) }
    /// Every element of `a` times `s`.
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, offset: 0) }
    /// `s` added to every element of `a`.
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, offset: s) }
    /// `-a` element-wise.
    public static prefix func - (a: Tensor) -> Tensor { a.affine(scale: -1, offset: 0) }

    /// A vectorised C kernel `out = a ∘ b` over `count` elements.
    typealias BinaryKernel = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void

    /// `combine` through `kernel` where `b` has `a`'s shape or repeats along its
    /// leading dimensions (a bias row); `op`, the same operation, otherwise.
    private static func combine(_ a: Tensor, _ b: Tensor, kernel: BinaryKernel, _ op: (Float, Float) -> Float) -> Tensor {
        let period = b.count
        guard period > 1, a.rank >= b.rank, a.shape.suffix(b.rank) == b.shape[...] else { return combine(a, b, op) }
        var out = Tensor(uninitialized: a.shape)
        a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                out.scalars.withUnsafeMutableBufferPointer { po in
                    if period == pa.count {
                        Parallel.forRanges(pa.count) { range in
                            kernel(pa.baseAddress! + range.lowerBound, pb.baseAddress! + range.lowerBound,
                                   po.baseAddress! + range.lowerBound, range.count)
                        }
                    } else {
                        Parallel.forRows(pa.count / period, width: period) { rows in
                            for row in rows {
                                kernel(pa.baseAddress! + row * period, pb.baseAddress!, po.baseAddress! + row * period, period)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `self * scale + offset` element-wise.
    private func affine(scale: Float, offset: Float) -> Tensor {
        var out = Tensor(uninitialized: shape)
        scalars.withUnsafeBufferPointer { p in
            out.scalars.withUnsafeMutableBufferPointer { po in
                Parallel.forRanges(p.count) { range in
                    graft_affine(p.baseAddress! + range.lowerBound, scale, offset, po.baseAddress! + range.lowerBound, range.count)
                }
            }
        }
        return out
    }

    /// `self += other` for equal shapes, in place.
    public mutating func add(_ other: Tensor, scaledBy factor: Float = 1) {
        precondition(shape == other.shape, "add: shapes \(shape) and \(other.shape) differ")
        scalars.withUnsafeMutableBufferPointer { p in
            other.scalars.withUnsafeBufferPointer { q in
                Parallel.forRanges(p.count) { range in
                    graft_accumulate(p.baseAddress! + range.lowerBound, q.baseAddress! + range.lowerBound, factor, range.count)
                }
            }
        }
    }
}
