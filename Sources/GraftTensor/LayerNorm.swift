import CKernels

/// Layer normalisation over the last axis, with the statistics its pullback needs.
public struct LayerNormResult: Sendable {
    /// `gamma * (x - mean) / sqrt(var + eps) + beta`.
    public var output: Tensor
    /// The normalised input `(x - mean) * rstd`, same shape as the input; nil when
    /// not kept (no pullback will run).
    public var normalized: Tensor?
    /// `1 / sqrt(var + eps)` per row.
    public var inverseStandardDeviation: [Float]
}

extension Tensor {
    /// Normalises each row (last axis) to zero mean and unit variance (biased
    /// variance, as PyTorch), then scales by `gamma` and shifts by `beta`.
    /// `keepingNormalized: false` skips the normalised copy the pullback needs.
    public func layerNorm(gamma: Tensor, beta: Tensor, epsilon: Float, keepingNormalized: Bool = true) -> LayerNormResult {
        let width = shape.last ?? 1
        precondition(gamma.shape == [width] && beta.shape == [width],
                     "layerNorm: gamma \(gamma.shape) and beta \(beta.shape) must be [\(width)] for input \(shape)")
        let rows = width == 0 ? 0 : count / width
        var output = Tensor(uninitialized: shape)
        var normalized = keepingNormalized ? Tensor(uninitialized: shape) : nil
        var rstd = [Float](repeating: 0, count: rows)
        scalars.withUnsafeBufferPointer { x in
            output.scalars.withUnsafeMutableBufferPointer { o in
                rstd.withUnsafeMutableBufferPointer { inverse in
                    gamma.scalars.withUnsafeBufferPointer { g in
                        beta.scalars.withUnsafeBufferPointer { b in
                            normalized.withUnsafeMutableBaseAddress { n in
                                Parallel.forRows(rows, width: width) { range in
                                    for r in range {
                                        let base = r * width
                                        inverse[r] = graft_layer_norm(x.baseAddress! + base, g.baseAddress!, b.baseAddress!, epsilon,
                                                                      o.baseAddress! + base, n.map { $0 + base }, width)
                                    }
                                }
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
        guard let normalized = forward.normalized else {
            preconditionFailure("layerNormBackward: the forward pass did not keep the normalised input")
        }
        var dgamma: Tensor?, dbeta: Tensor?
        if parameterGradients {
            var dg = Tensor(zeros: [width]), db = Tensor(zeros: [width])
            dg.scalars.withUnsafeMutableBufferPointer { dg in
                db.scalars.withUnsafeMutableBufferPointer { db in
                    dy.scalars.withUnsafeBufferPointer { d in
                        normalized.scalars.withUnsafeBufferPointer { xhat in
                            Parallel.forColumns(width, rows: d.count / width) { columns in
                                for base in stride(from: 0, to: d.count, by: width) {
                                    for j in columns {
                                        dg[j] += d[base + j] * xhat[base + j]
                                        db[j] += d[base + j]
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (dgamma, dbeta) = (dg, db)
        }
        let dx = normalized.scalars.withUnsafeBufferPointer { xhat in
            gamma.scalars.withUnsafeBufferPointer { g in
                dy.mappingRows { d, r in
                    graft_layer_norm_backward(d.baseAddress!, xhat.baseAddress! + r * width, g.baseAddress!,
                                              forward.inverseStandardDeviation[r], width)
                }
            }
        }
        return (dx, dgamma, dbeta)
    }
}
