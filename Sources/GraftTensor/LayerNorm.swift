/// Layer normalisation over the last axis, with the statistics its pullback needs.
public struct LayerNormResult: Sendable {
    /// `gamma * (x - mean) / sqrt(var + eps) + beta`.
    public var output: Tensor
    /// The normalised input `(x - mean) * rstd`, same shape as the input.
    public var normalized: Tensor
    /// `1 / sqrt(var + eps)` per row.
    public var inverseStandardDeviation: [Float]
}

extension Tensor {
    /// Normalises each row (last axis) to zero mean and unit variance (biased
    /// variance, as PyTorch), then scales by `gamma` and shifts by `beta`.
    public func layerNorm(gamma: Tensor, beta: Tensor, epsilon: Float) -> LayerNormResult {
        let width = shape.last ?? 1
        precondition(gamma.shape == [width] && beta.shape == [width],
                     "layerNorm: gamma \(gamma.shape) and beta \(beta.shape) must be [\(width)] for input \(shape)")
        let rows = width == 0 ? 0 : count / width
        var normalized = self
        var output = self
        var rstd = [Float](repeating: 0, count: rows)
        normalized.scalars.withUnsafeMutableBufferPointer { n in
            output.scalars.withUnsafeMutableBufferPointer { o in
                gamma.scalars.withUnsafeBufferPointer { g in
                    beta.scalars.withUnsafeBufferPointer { b in
                        for r in 0..<rows {
                            let base = r * width
                            var mean: Float = 0
                            for j in 0..<width { mean += n[base + j] }
                            mean /= Float(width)
                            var variance: Float = 0
                            for j in 0..<width { let d = n[base + j] - mean; variance += d * d }
                            variance /= Float(width)
                            let inv = 1 / (variance + epsilon).squareRoot()
                            rstd[r] = inv
                            for j in 0..<width {
                                let xhat = (n[base + j] - mean) * inv
                                n[base + j] = xhat
                                o[base + j] = xhat * g[j] + b[j]
                            }
                        }
                    }
                }
            }
        }
        return LayerNormResult(output: output, normalized: normalized, inverseStandardDeviation: rstd)
    }

    /// Pullback of `layerNorm`: returns the gradients for the input, `gamma`
    /// and `beta` given the forward statistics and the upstream gradient.
    public static func layerNormBackward(
        _ forward: LayerNormResult, gamma: Tensor, gradient dy: Tensor
    ) -> (input: Tensor, gamma: Tensor, beta: Tensor) {
        let width = gamma.count
        let rows = forward.inverseStandardDeviation.count
        var dx = dy
        var dgamma = Tensor(zeros: [width])
        var dbeta = Tensor(zeros: [width])
        dx.scalars.withUnsafeMutableBufferPointer { d in
            forward.normalized.scalars.withUnsafeBufferPointer { xhat in
                gamma.scalars.withUnsafeBufferPointer { g in
                    dgamma.scalars.withUnsafeMutableBufferPointer { dg in
                        dbeta.scalars.withUnsafeMutableBufferPointer { db in
                            for r in 0..<rows {
                                let base = r * width
                                var sumDxhat: Float = 0
                                var sumDxhatXhat: Float = 0
                                for j in 0..<width {
                                    let upstream = d[base + j]
                                    dg[j] += upstream * xhat[base + j]
                                    db[j] += upstream
                                    let dxhat = upstream * g[j]
                                    sumDxhat += dxhat
                                    sumDxhatXhat += dxhat * xhat[base + j]
                                }
                                let scale = forward.inverseStandardDeviation[r] / Float(width)
                                for j in 0..<width {
                                    let dxhat = d[base + j] * g[j]
                                    d[base + j] = scale * (Float(width) * dxhat - sumDxhat - xhat[base + j] * sumDxhatXhat)
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dgamma, dbeta)
    }
}
