import Foundation
import GraftTensor

/// Activations and (log-)softmax over the last axis.
extension Variable {
    /// GELU in BERT's exact erf form: `x * Φ(x)`.
    public func gelu() -> Variable {
        guard isTracked else { return Variable(value.gelu()) }
        let (y, derivative) = value.geluWithDerivative()
        return differentiable(y, self) { g, _ in [g * derivative] }
    }

    /// `max(x, 0)` element-wise; the gradient passes only where `x > 0`.
    public func relu() -> Variable {
        differentiable(value.relu(), self) { [x = value] g, _ in [Tensor.combine(g, x) { $1 > 0 ? $0 : 0 }] }
    }

    /// The logistic function `1 / (1 + exp(-x))` element-wise.
    public func sigmoid() -> Variable {
        let y = value.sigmoid()
        return differentiable(y, self) { g, _ in [Tensor.combine(g, y) { $0 * $1 * (1 - $1) }] }
    }

    /// Swish / SiLU: `x * sigmoid(x)`.
    public func silu() -> Variable {
        differentiable(value.silu(), self) { [x = value] g, _ in
            [Tensor.combine(g, x) { g, x in
                let s = 1 / (1 + expf(-x))
                return g * s * (1 + x * (1 - s))
            }]
        }
    }

    /// Hyperbolic tangent, element-wise.
    public func tanh() -> Variable {
        let y = value.tanh()
        return differentiable(y, self) { g, _ in [Tensor.combine(g, y) { $0 * (1 - $1 * $1) }] }
    }

    /// `exp(x)` element-wise.
    public func exp() -> Variable {
        let y = value.exp()
        return differentiable(y, self) { g, _ in [g * y] }
    }

    /// Natural logarithm, element-wise.
    public func log() -> Variable {
        differentiable(value.log(), self) { [x = value] g, _ in [g / x] }
    }

    /// Softmax over the last axis.
    public func softmax() -> Variable {
        let y = value.softmax()
        return differentiable(y, self) { g, _ in [Tensor.softmaxBackward(output: y, gradient: g)] }
    }

    /// Attention probabilities `softmax(scale * scores + mask)` over the keys of
    /// `[batch, heads, queries, keys]` scores, padded keys (`keyMask` 0) excluded.
    public func maskedSoftmax(keyMask: [Int], scale: Float) -> Variable {
        let y = value.maskedSoftmax(keyMask: keyMask, scale: scale)
        return differentiable(y, self) { g, _ in [Tensor.softmaxBackward(output: y, gradient: g) * scale] }
    }

    /// Log-softmax over the last axis.
    public func logSoftmax() -> Variable {
        let y = value.logSoftmax()
        return differentiable(y, self) { g, _ in [Tensor.logSoftmaxBackward(output: y, gradient: g)] }
    }

    /// Layer normalisation over the last axis with scale `gamma` and shift `beta`.
    public func layerNorm(gamma: Variable, beta: Variable, epsilon: Float) -> Variable {
        let result = value.layerNorm(gamma: gamma.value, beta: beta.value, epsilon: epsilon,
                                     keepingNormalized: isTracked || gamma.isTracked || beta.isTracked)
        return differentiable(result.output, self, gamma, beta) { g, needed in
            let grads = Tensor.layerNormBackward(result, gamma: gamma.value, gradient: g,
                                                 parameterGradients: needed[1] || needed[2])
            return [needed[0] ? grads.input : nil, needed[1] ? grads.gamma : nil, needed[2] ? grads.beta : nil]
        }
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the
    /// rest by `1 / (1 - p)`. The mask comes from `generator` (one byte per element is kept).
    public func dropout(probability p: Float, generator: inout SeededGenerator) -> Variable {
        guard p > 0 else { return self }
        let mask = DropoutMask(count: value.count, probability: p, generator: &generator)
        return differentiable(mask.apply(to: value), self) { g, _ in [mask.apply(to: g)] }
    }
}
