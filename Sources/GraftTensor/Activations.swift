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
