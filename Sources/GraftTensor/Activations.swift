import CKernels
import Foundation

/// Activation functions and (log-)softmax, with the derivative kernels their
/// pullbacks use.
extension Tensor {
    /// GELU in the exact erf form used by BERT: `x * Φ(x)`.
    public func gelu() -> Tensor { applyingGELU(derivative: false).value }

    /// Derivative of `gelu` at each element: `Φ(x) + x φ(x)`.
    public func geluDerivative() -> Tensor { geluWithDerivative().derivative }

    /// GELU and its derivative in one pass.
    public func geluWithDerivative() -> (value: Tensor, derivative: Tensor) {
        let (value, derivative) = applyingGELU(derivative: true)
        return (value, derivative!)
    }

    private func applyingGELU(derivative wanted: Bool) -> (value: Tensor, derivative: Tensor?) {
        var value = Tensor(uninitialized: shape)
        var derivative = wanted ? Tensor(uninitialized: shape) : nil
        scalars.withUnsafeBufferPointer { x in
            value.scalars.withUnsafeMutableBufferPointer { v in
                derivative.withUnsafeMutableBaseAddress { d in
                    Parallel.forRanges(x.count) { range in
                        graft_gelu(x.baseAddress! + range.lowerBound, v.baseAddress! + range.lowerBound,
                                   d.map { $0 + range.lowerBound }, range.count)
                    }
                }
            }
        }
        return (value, derivative)
    }

    /// `max(x, 0)` element-wise.
    public func relu() -> Tensor { map { Swift.max($0, 0) } }
    /// The logistic function `1 / (1 + exp(-x))` element-wise, stable for large `|x|`.
    public func sigmoid() -> Tensor { map(Tensor.sigmoid) }
    /// Swish / SiLU: `x * sigmoid(x)`.
    public func silu() -> Tensor { map { $0 * Tensor.sigmoid($0) } }
    /// Hyperbolic tangent, element-wise.
    public func tanh() -> Tensor { map { tanhf($0) } }
    /// `exp(x)` element-wise (vectorised kernel).
    public func exp() -> Tensor {
        var out = Tensor(uninitialized: shape)
        scalars.withUnsafeBufferPointer { x in
            out.scalars.withUnsafeMutableBufferPointer { y in
                Parallel.forRanges(x.count) { range in
                    _ = graft_exp(x.baseAddress! + range.lowerBound, y.baseAddress! + range.lowerBound, 0, 1, range.count)
                }
            }
        }
        return out
    }
    /// Natural logarithm, element-wise (`-inf` at 0, NaN below).
    public func log() -> Tensor { map { logf($0) } }
    /// Square root, element-wise (NaN for negative elements).
    public func squareRoot() -> Tensor { map { sqrtf($0) } }

    @inlinable
    static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + expf(-x)) : { let e = expf(x); return e / (1 + e) }()
    }

    /// Softmax over the last axis.
    public func softmax() -> Tensor {
        mappingRows { row, _ in Tensor.softmaxInPlace(row) }
    }

    /// Log-softmax over the last axis (numerically stable).
    public func logSoftmax() -> Tensor {
        mappingRows { row, _ in
            var peak = -Float.infinity
            for j in row.indices { peak = Swift.max(peak, row[j]) }
            let shift = peak + logf(graft_exp(row.baseAddress!, nil, peak, 1, row.count))
            for j in row.indices { row[j] -= shift }
        }
    }

    /// Attention probabilities: softmax over the last axis of `scale * scores + mask`,
    /// where `scores` is `[batch, heads, queries, keys]` and `keyMask` (`batch * keys`,
    /// 1 for real tokens, 0 for padding) removes padded keys. One pass per row,
    /// with no broadcast mask tensor.
    public func maskedSoftmax(keyMask: [Int], scale: Float) -> Tensor {
        precondition(rank == 4 && keyMask.count == shape[0] * shape[3],
                     "maskedSoftmax: scores \(shape) need [batch, heads, queries, keys] and a mask of batch * keys entries")
        let keys = shape[3], rowsPerExample = shape[1] * shape[2]
        return keyMask.withUnsafeBufferPointer { mask in
            mappingRows { row, index in
                let maskBase = (index / rowsPerExample) * keys
                for j in 0..<keys { row[j] = mask[maskBase + j] == 0 ? -1e9 : row[j] * scale }
                Tensor.softmaxInPlace(row)
            }
        }
    }

    /// Replaces a row by its softmax.
    public static func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Float>) {
        guard let base = row.baseAddress else { return }
        _ = graft_softmax(base, nil, nil, 1, row.count)
    }

    /// A tensor of this shape whose rows are copies of this tensor's rows, each
    /// then changed in place by `body(row, index)`; rows are split across cores.
    @inlinable
    public func mappingRows(_ body: (UnsafeMutableBufferPointer<Float>, Int) -> Void) -> Tensor {
        let width = shape.last ?? 1
        guard width > 0, count > 0 else { return self }
        var out = Tensor(uninitialized: shape)
        scalars.withUnsafeBufferPointer { source in
            out.scalars.withUnsafeMutableBufferPointer { p in
                Parallel.forRows(p.count / width, width: width) { rows in
                    for r in rows {
                        let row = UnsafeMutableBufferPointer(rebasing: p[(r * width)..<((r + 1) * width)])
                        row.baseAddress!.update(from: source.baseAddress! + r * width, count: width)
                        body(row, r)
                    }
                }
            }
        }
        return out
    }

    /// Softmax pullback given the softmax output `y` and upstream gradient `dy`
    /// (last axis): `dx = y * (dy - sum(dy * y))`.
    public static func softmaxBackward(output y: Tensor, gradient dy: Tensor) -> Tensor {
        y.scalars.withUnsafeBufferPointer { p in
            dy.mappingRows { g, r in graft_softmax_backward(g.baseAddress!, p.baseAddress! + r * g.count, 1, g.count) }
        }
    }

    /// Log-softmax pullback given the log-softmax output and upstream gradient:
    /// `dx = dy - softmax * sum(dy)`.
    public static func logSoftmaxBackward(output y: Tensor, gradient dy: Tensor) -> Tensor {
        y.scalars.withUnsafeBufferPointer { p in
            dy.mappingRows { g, r in
                let base = r * g.count
                var total: Float = 0
                for j in g.indices { total += g[j] }
                for j in g.indices { g[j] -= expf(p[base + j]) * total }
            }
        }
    }
}
