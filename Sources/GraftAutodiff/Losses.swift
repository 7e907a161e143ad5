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
        for target in targets where target != ignoreIndex {
            precondition(target >= 0 && target < classes, "crossEntropy: target \(target) outside 0..<\(classes)")
        }
        let counted = targets.filter { $0 != ignoreIndex }.count
        let scale = counted == 0 ? 0 : 1 / Float(counted)
        // One pass per row gives both the loss term, log Σ e^z - z_target, and the
        // gradient, (softmax - one-hot) * scale, which is all the pullback keeps.
        var terms = [Float](repeating: 0, count: targets.count)
        let gradient = terms.withUnsafeMutableBufferPointer { terms in
            logits.value.mappingRows { row, index in
                let target = targets[index]
                guard target != ignoreIndex else { return row.update(repeating: 0) }
                let logit = row[target]
                terms[index] = graft_softmax(row.baseAddress!, nil, nil, scale, row.count) - logit
                row[target] -= scale
            }
        }
        let total = terms.reduce(0) { $0 + Double($1) }
        return differentiable(Tensor(scalar: Float(total) * scale), logits) { g, _ in
            [g.scalar == 1 ? gradient : gradient * g.scalar]
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
