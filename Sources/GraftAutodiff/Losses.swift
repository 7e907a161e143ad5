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
    ///
    /// With `classWeights` (one non-negative weight per class) each row's term
    /// is weighted by its target's class and the sum divided by the sum of
    /// those weights, as `torch.nn.CrossEntropyLoss(weight:)` does.
    public static func crossEntropy(logits: Variable, targets: [Int], classWeights: [Float]? = nil,
                                    ignoreIndex: Int = ignoreIndex) -> Variable {
        precondition(logits.value.rank == 2 && logits.shape[0] == targets.count,
                     "crossEntropy: logits \(logits.shape) must be [\(targets.count), classes]")
        let classes = logits.shape[1]
        let scale = meanScale(targets, classes: classes, ignoreIndex: ignoreIndex)
        var rowScales = [Float](repeating: scale, count: targets.count)
        if let classWeights {
            precondition(classWeights.count == classes && classWeights.allSatisfy { $0 >= 0 && $0.isFinite },
                         "crossEntropy: \(classWeights.count) class weights for \(classes) classes, each finite and >= 0")
            let total = targets.reduce(0) { $0 + ($1 == ignoreIndex ? 0 : Double(classWeights[$1])) }
            for (index, target) in targets.enumerated() where target != ignoreIndex {
                rowScales[index] = total > 0 ? Float(Double(classWeights[target]) / total) : 0
            }
        }
        var terms = [Float](repeating: 0, count: targets.count)
        let gradient = terms.withUnsafeMutableBufferPointer { terms in
            logits.value.mappingRows { row, index in
                terms[index] = crossEntropyRow(row.baseAddress!, classes: classes, target: targets[index],
                                               scale: rowScales[index], ignoreIndex: ignoreIndex)
            }
        }
        let loss = classWeights == nil
            ? Float(terms.reduce(0) { $0 + Double($1) }) * scale
            : Float(zip(terms, rowScales).reduce(0) { $0 + Double($1.0) * Double($1.1) })
        return differentiable(Tensor(scalar: loss), logits) { g, _ in
            [g.scalar == 1 ? gradient : gradient * g.scalar]
        }
    }

    /// `crossEntropy(logits: linear(x, weight: weight, bias: bias), targets: targets)`
    /// without holding the `[rows, classes]` logits: rows go through in blocks of
    /// `rowsPerBlock`, each block's logits turn into their gradient in place and
    /// are multiplied straight into the gradients of the tracked `x`, `weight` and
    /// `bias`, which are all the pullback keeps. For a vocabulary decoder this
    /// keeps one block of logits alive instead of two full `[rows, vocabulary]` tensors.
    public static func linearCrossEntropy(_ x: Variable, weight: Variable, bias: Variable?, targets: [Int],
                                          ignoreIndex: Int = ignoreIndex, rowsPerBlock: Int = 128) -> Variable {
        let (classes, inputs) = (weight.shape[0], weight.shape[1])
        precondition(weight.value.rank == 2 && x.value.rank == 2 && x.shape == [targets.count, inputs]
                     && bias.map { $0.shape == [classes] } ?? true && rowsPerBlock > 0,
                     "linearCrossEntropy: input \(x.shape), weight \(weight.shape) and bias \(bias?.shape ?? []) "
                     + "do not fit \(targets.count) targets")
        let rows = targets.count
        let scale = meanScale(targets, classes: classes, ignoreIndex: ignoreIndex)
        var terms = [Float](repeating: 0, count: rows)
        // The GEMMs write every element of dX, and of dWeight from the first block on.
        var dX = x.isTracked ? Tensor(uninitialized: x.shape) : nil
        var dWeight = weight.isTracked ? (rows > 0 ? Tensor(uninitialized: weight.shape) : Tensor(zeros: weight.shape)) : nil
        var dBias = bias?.isTracked == true ? Tensor(zeros: [classes]) : nil
        var block = Tensor(uninitialized: [Swift.min(rowsPerBlock, rows), classes])
        for start in stride(from: 0, to: rows, by: rowsPerBlock) {
            let count = Swift.min(rowsPerBlock, rows - start)
            block.scalars.withUnsafeMutableBufferPointer { logits in
                let logits = logits.baseAddress!
                x.value.scalars.withUnsafeBufferPointer { xs in
                    weight.value.scalars.withUnsafeBufferPointer { w in
                        let rowsOfX = xs.baseAddress! + start * inputs
                        affine(rowsOfX, rows: count, weight: weight.value, bias: bias?.value, into: logits)
                        terms.withUnsafeMutableBufferPointer { terms in
                            Parallel.forRows(count, width: classes) { range in
                                for row in range {
                                    terms[start + row] = crossEntropyRow(logits + row * classes, classes: classes, target: targets[start + row],
                                                                         scale: scale, ignoreIndex: ignoreIndex)
                                }
                            }
                        }
                        dX?.scalars.withUnsafeMutableBufferPointer { dx in
                            BLAS.gemm(transposeA: false, transposeB: false, m: count, n: inputs, k: classes,
                                      a: logits, lda: classes, b: w.baseAddress!, ldb: inputs,
                                      c: dx.baseAddress! + start * inputs, ldc: inputs)
                        }
                        dWeight?.scalars.withUnsafeMutableBufferPointer { dw in
                            BLAS.gemm(transposeA: true, transposeB: false, m: classes, n: inputs, k: count,
                                      a: logits, lda: classes, b: rowsOfX, ldb: inputs,
                                      beta: start == 0 ? 0 : 1, c: dw.baseAddress!, ldc: inputs)
                        }
                    }
                }
                dBias?.scalars.withUnsafeMutableBufferPointer { db in
                    BLAS.columnSums(logits, rows: count, columns: classes, into: db.baseAddress!, adding: true)
                }
            }
        }
        let total = terms.reduce(0) { $0 + Double($1) }
        let gradients = [dX, dWeight] + (bias == nil ? [] : [dBias])
        let pullback: Tape.Pullback = { g, _ in
            gradients.map { gradient in gradient.map { g.scalar == 1 ? $0 : $0 * g.scalar } }
        }
        let loss = Tensor(scalar: Float(total) * scale)
        if let bias { return differentiable(loss, x, weight, bias, pullback: pullback) }
        return differentiable(loss, x, weight, pullback: pullback)
    }

    /// `1 / n` for the `n` targets that are not `ignoreIndex` (0 if there are none),
    /// after checking that each of them is a class.
    private static func meanScale(_ targets: [Int], classes: Int, ignoreIndex: Int) -> Float {
        for target in targets where target != ignoreIndex {
            precondition(target >= 0 && target < classes, "crossEntropy: target \(target) outside 0..<\(classes)")
        }
        let counted = targets.filter { $0 != ignoreIndex }.count
        return counted == 0 ? 0 : 1 / Float(counted)
    }

    /// One row of cross-entropy in one softmax pass: replaces the logits `row` by
    /// their gradient, `(softmax - one-hot) * scale` (zeros for an ignored row),
    /// and returns the row's loss term, `log Σ e^z - z_target` (0 if ignored).
    private static func crossEntropyRow(_ row: UnsafeMutablePointer<Float>, classes: Int, target: Int,
                                        scale: Float, ignoreIndex: Int) -> Float {
        guard target != ignoreIndex else {
            row.update(repeating: 0, count: classes)
            return 0
        }
        let logit = row[target]
        let term = graft_softmax(row, nil, nil, scale, classes) - logit
        row[target] -= scale
        return term
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
