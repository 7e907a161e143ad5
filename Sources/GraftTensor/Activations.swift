import Foundation

/// Activation functions and (log-)softmax, with the derivative kernels their
/// pullbacks use.
extension Tensor {
    /// GELU in the exact erf form used by BERT: `x * Φ(x)`.
    public func gelu() -> Tensor { map { 0.5 * $0 * (1 + erff($0 * 0.70710678118654752)) } }
    /// Derivative of `gelu` at each element: `Φ(x) + x φ(x)`.
    public func geluDerivative() -> Tensor {
        map { x in
            let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
            let pdf = 0.3989422804014327 * expf(-0.5 * x * x)
            return cdf + x * pdf
        }
    }
    /// GELU and its derivative in one pass (one `erf` and one `exp` per element).
    public func geluWithDerivative() -> (value: Tensor, derivative: Tensor) {
        var value = self, derivative = self
        value.scalars.withUnsafeMutableBufferPointer { v in
            derivative.scalars.withUnsafeMutableBufferPointer { d in
                for i in 0..<v.count {
                    let x = v[i]
                    let cdf = 0.5 * (1 + erff(x * 0.70710678118654752))
                    v[i] = x * cdf
                    d[i] = cdf + x * 0.3989422804014327 * expf(-0.5 * x * x)
                }
            }
        }
        return (value, derivative)
    }

    public func relu() -> Tensor { map { Swift.max($0, 0) } }
    public func sigmoid() -> Tensor { map(Tensor.sigmoid) }
    /// Swish / SiLU: `x * sigmoid(x)`.
    public func silu() -> Tensor { map { $0 * Tensor.sigmoid($0) } }
    public func tanh() -> Tensor { map { tanhf($0) } }
    public func exp() -> Tensor { map { expf($0) } }
    public func log() -> Tensor { map { logf($0) } }
    public func squareRoot() -> Tensor { map { sqrtf($0) } }

    @inlinable
    static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + expf(-x)) : { let e = expf(x); return e / (1 + e) }()
    }

    /// Softmax over the last axis.
    public func softmax() -> Tensor {
        var out = self
        let width = shape.last ?? 1
        guard width > 0 else { return out }
        out.scalars.withUnsafeMutableBufferPointer { p in
            for row in stride(from: 0, to: p.count, by: width) {
                var peak = -Float.infinity
                for j in row..<(row + width) { peak = Swift.max(peak, p[j]) }
                var total: Float = 0
                for j in row..<(row + width) { p[j] = expf(p[j] - peak); total += p[j] }
                let inverse = 1 / total
                for j in row..<(row + width) { p[j] *= inverse }
            }
        }
        return out
    }

    /// Log-softmax over the last axis (numerically stable).
    public func logSoftmax() -> Tensor {
        var out = self
        let width = shape.last ?? 1
        guard width > 0 else { return out }
        out.scalars.withUnsafeMutableBufferPointer { p in
            for row in stride(from: 0, to: p.count, by: width) {
                var peak = -Float.infinity
                for j in row..<(row + width) { peak = Swift.max(peak, p[j]) }
                var total: Float = 0
                for j in row..<(row + width) { total += expf(p[j] - peak) }
                let shift = peak + logf(total)
                for j in row..<(row + width) { p[j] -= shift }
            }
        }
        return out
    }

    /// Attention probabilities: softmax over the last axis of `scale * scores + mask`,
    /// where `scores` is `[batch, heads, queries, keys]` and `keyMask` (`batch * keys`,
    /// 1 for real tokens, 0 for padding) removes padded keys. One pass per row,
    /// with no broadcast mask tensor.
    public func maskedSoftmax(keyMask: [Int], scale: Float) -> Tensor {
        precondition(rank == 4 && keyMask.count == shape[0] * shape[3],
                     "maskedSoftmax: scores \(shape) need [batch, heads, queries, keys] and a mask of batch * keys entries")
        var out = self
        let keys = shape[3], rowsPerExample = shape[1] * shape[2]
        out.scalars.withUnsafeMutableBufferPointer { p in
            keyMask.withUnsafeBufferPointer { mask in
                for row in 0..<(p.count / Swift.max(keys, 1)) {
                    let base = row * keys, maskBase = (row / rowsPerExample) * keys
                    var peak = -Float.infinity
                    for j in 0..<keys {
                        let v = mask[maskBase + j] == 0 ? -1e9 : p[base + j] * scale
                        p[base + j] = v
                        peak = Swift.max(peak, v)
                    }
                    var total: Float = 0
                    for j in 0..<keys { let e = expf(p[base + j] - peak); p[base + j] = e; total += e }
                    let inverse = 1 / total
                    for j in 0..<keys { p[base + j] *= inverse }
                }
            }
        }
        return out
    }

    /// Softmax pullback given the softmax output `y` and upstream gradient `dy`
    /// (last axis): `dx = y * (dy - sum(dy * y))`.
    public static func softmaxBackward(output y: Tensor, gradient dy: Tensor) -> Tensor {
        var dx = dy
        let width = y.shape.last ?? 1
        dx.scalars.withUnsafeMutableBufferPointer { g in
            y.scalars.withUnsafeBufferPointer { p in
                for row in stride(from: 0, to: g.count, by: width) {
                    var dot: Float = 0
                    for j in row..<(row + width) { dot += g[j] * p[j] }
                    for j in row..<(row + width) { g[j] = p[j] * (g[j] - dot) }
                }
            }
        }
        return dx
    }

    /// Log-softmax pullback given the log-softmax output and upstream gradient:
    /// `dx = dy - softmax * sum(dy)`.
    public static func logSoftmaxBackward(output y: Tensor, gradient dy: Tensor) -> Tensor {
        var dx = dy
        let width = y.shape.last ?? 1
        dx.scalars.withUnsafeMutableBufferPointer { g in
            y.scalars.withUnsafeBufferPointer { p in
                for row in stride(from: 0, to: g.count, by: width) {
                    var total: Float = 0
                    for j in row..<(row + width) { total += g[j] }
                    for j in row..<(row + width) { g[j] -= expf(p[j]) * total }
                }
            }
        }
        return dx
    }
}
