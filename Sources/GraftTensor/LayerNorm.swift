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
        var output = Tensor(uninitialized: shape)
        var rstd = [Float](repeating: 0, count: rows)
        var normalized = self
        output.scalars.withUnsafeMutableBufferPointer { o in
            rstd.withUnsafeMutableBufferPointer { inverse in
                gamma.scalars.withUnsafeBufferPointer { g in
                    beta.scalars.withUnsafeBufferPointer { b in
                        normalized = mappingRows { n, r in
                            var mean: Float = 0
                            for j in 0..<width { mean += n[j] }
                            mean /= Float(width)
                            var variance: Float = 0
                            for j in 0..<width { let d = n[j] - mean; variance += d * d }
                            variance /= Float(width)
                            let inv = 1 / (variance + epsilon).squareRoot()
                            inverse[r] = inv
                            let base = r * width
                            for j in 0..<width {
                                let xhat = (n[j] - mean) * inv
                                n[j] = xhat
                                o[base + j] = xhat * g[j] + b[j]
                            }
                        }
                    }
                }
            }
        }
        return LayerNormResult(output: output, normalized: normalized, inverseStandardDeviation: rstd)
    }

    /// Pullback of `layerNorm`: returns the gradients for the input and, when
    /// `parameterGradients` is set, for `gamma` and `beta`, given the forward
    /// statistics and the upstream gradient.
    public static func layerNormBackward(
        _ forward: LayerNormResult, gamma: Tensor, gradient dy: Tensor, parameterGradients: Bool = true
    ) -> (input: Tensor, gamma: Tensor?, beta: Tensor?) {
        let width = gamma.count
        var dgamma: Tensor?, dbeta: Tensor?
        if parameterGradients {
            var dg = Tensor(zeros: [width]), db = Tensor(zeros: [width])
            dg.scalars.withUnsafeMutableBufferPointer { dg in
                db.scalars.withUnsafeMutableBufferPointer { db in
                    dy.scalars.withUnsafeBufferPointer { d in
                        forward.normalized.scalars.withUnsafeBufferPointer { xhat in
                            for base in stride(from: 0, to: d.count, by: width) {
                                for j in 0..<width {
                                    dg[j] += d[base + j] * xhat[base + j]
                                    db[j] += d[base + j]
                                }
                            }
                        }
                    }
                }
            }
            (dgamma, dbeta) = (dg, db)
        }
        let dx = forward.normalized.scalars.withUnsafeBufferPointer { xhat in
            gamma.scalars.withUnsafeBufferPointer { g in
                dy.mappingRows { d, r in
                    let base = r * width
                    var sumDxhat: Float = 0
                    var sumDxhatXhat: Float = 0
                    for j in 0..<width {
                        let dxhat = d[j] * g[j]
                        sumDxhat += dxhat
                        sumDxhatXhat += dxhat * xhat[base + j]
                    }
                    let scale = forward.inverseStandardDeviation[r] / Float(width)
                    for j in 0..<width {
                        d[j] = scale * (Float(width) * d[j] * g[j] - sumDxhat - xhat[base + j] * sumDxhatXhat)
                    }
                }
            }
        }
        return (dx, dgamma, dbeta)
    }
}
