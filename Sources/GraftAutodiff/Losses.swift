import CKernels
import Foundation
import GraftTensor

/// Loss functions; each returns a scalar mean over the counted elements.
extension Variable {
    /// PyTorch's default ignore index for `crossEntropy`.
    public static let ignoreIndex = -100

    /// Cross-entropy of `logits` (`[n, classes]`) against class `targets`,
    /// averaged over the targets that are not `ignoreIndex`. If every target is
    /// ignored the loss is 0 with a zero gradient.
    public static func crossEntropy(logits: Variable, targets: [Int], ignoreIndex: Int = ignoreIndex) -> Variable {
        precondition(logits.value.rank == 2 && logits.shape[0] == targets.count,
                     "crossEntropy: logits \(logits.shape) must be [\(targets.count), classes]")
        let classes = logits.shape[1]
        let logProbabilities = logits.value.logSoftmax()
        let counted = targets.filter { $0 != ignoreIndex }.count
        var total: Double = 0
        for (row, target) in targets.enumerated() where target != ignoreIndex {
            precondition(target >= 0 && target < classes, "crossEntropy: target \(target) outside 0..<\(classes)")
            total -= Double(logProbabilities.scalars[row * classes + target])
        }
        let scale = counted == 0 ? 0 : 1 / Float(counted)
        return differentiable(Tensor(scalar: Float(total) * scale), logits) { g, _ in
            // (softmax - one-hot) * scale, computed in place in one pass per row.
            let factor = scale * g.scalar
            let d = logProbabilities.mappingRows { p, row in
                let target = targets[row]
                if target == ignoreIndex {
                    for j in p.indices { p[j] = 0 }
                } else {
                    _ = graft_exp(p.baseAddress!, p.baseAddress!, 0, factor, p.count)
                    p[target] -= factor
                }
            }
            return [d]
        }
    }

    /// Binary cross-entropy on logits (numerically stable), averaged over all elements.
    public static func binaryCrossEntropy(logits: Variable, targets: Tensor) -> Variable {
        precondition(logits.shape == targets.shape, "binaryCrossEntropy: logits \(logits.shape) and targets \(targets.shape) differ")
        let x = logits.value
        var total: Double = 0
        for (z, t) in zip(x.scalars, targets.scalars) {
            total += Double(Swift.max(z, 0) - z * t + log1pf(expf(-abs(z))))
        }
        let scale = 1 / Float(x.count)
        return differentiable(Tensor(scalar: Float(total) * Float(scale)), logits) { g, _ in
            [Tensor.combine(x.sigmoid(), targets, -) * (scale * g.scalar)]
        }
    }

    /// Mean squared error against `targets`.
    public static func meanSquaredError(_ predictions: Variable, _ targets: Tensor) -> Variable {
        precondition(predictions.shape == targets.shape, "meanSquaredError: predictions \(predictions.shape) and targets \(targets.shape) differ")
        let difference = predictions - Variable(targets)
        return (difference * difference).mean()
    }
}
