import GraftTensor

extension Variable {
    /// The affine map `x Wᵀ + b` of a linear layer, fused: the bias seeds the
    /// output of the GEMM (`beta = 1`) and its gradient is one GEMV, so no
    /// extra pass over the activations is made. `x` is `[..., in]`, `weight`
    /// `[out, in]`, `bias` `[out]`.
    public static func linear(_ x: Variable, weight: Variable, bias: Variable?) -> Variable {
        let (outputs, inputs) = (weight.shape[0], weight.shape[1])
        precondition(weight.value.rank == 2 && x.shape.last == inputs,
                     "linear: input \(x.shape) does not match weight \(weight.shape) ([out, in])")
        if let bias { precondition(bias.shape == [outputs], "linear: bias \(bias.shape) must be [\(outputs)]") }
        let rows = Tensor.count(of: Array(x.shape.dropLast()))
        var output = Tensor(uninitialized: Array(x.shape.dropLast()) + [outputs])
        x.value.scalars.withUnsafeBufferPointer { a in
            output.scalars.withUnsafeMutableBufferPointer { out in
                affine(a.baseAddress, rows: rows, weight: weight.value, bias: bias?.value, into: out.baseAddress)
            }
        }
        // The input is kept for the weight gradient only: a frozen layer saves nothing.
        let inputs2D = weight.isTracked ? x.value.reshaped([rows, inputs]) : nil
        let (inputShape, weightValue) = (x.shape, weight.value)
        let pullback: Tape.Pullback = { g, needed in
            let g2D = g.reshaped([rows, outputs])
            let gradX = needed[0] ? Tensor.matmul(g2D, weightValue).reshaped(inputShape) : nil
            let gradW = needed[1] ? inputs2D.map { Tensor.matmul(g2D, $0, transposeA: true) } : nil
            var gradB: Tensor?
            if needed.count > 2 && needed[2] {
                var sums = Tensor(zeros: [outputs])
                g.scalars.withUnsafeBufferPointer { gp in
                    sums.scalars.withUnsafeMutableBufferPointer { BLAS.columnSums(gp.baseAddress!, rows: rows, columns: outputs, into: $0.baseAddress!) }
                }
                gradB = sums
            }
            return [gradX, gradW, gradB]
        }
        if let bias { return differentiable(output, x, weight, bias, pullback: pullback) }
        return differentiable(output, x, weight, pullback: pullback)
    }
}

/// Writes `x Wᵀ + b` for `rows` rows of `x` (`[rows, in]`) into `out`
/// (`[rows, out]`), every element: the bias seeds the rows and the GEMM adds
/// onto them (`beta = 1`); `weight` is `[out, in]`.
func affine(_ x: UnsafePointer<Float>?, rows: Int, weight: Tensor, bias: Tensor?, into out: UnsafeMutablePointer<Float>?) {
    let (outputs, inputs) = (weight.shape[0], weight.shape[1])
    guard rows > 0, outputs > 0, let out else { return }
    if let bias {
        bias.scalars.withUnsafeBufferPointer { b in
            Parallel.forRows(rows, width: outputs) { range in
                for row in range { (out + row * outputs).update(from: b.baseAddress!, count: outputs) }
            }
        }
    }
    guard inputs > 0, let x else {
        if bias == nil { out.update(repeating: 0, count: rows * outputs) }
        return
    }
    weight.scalars.withUnsafeBufferPointer { w in
        BLAS.gemm(transposeA: false, transposeB: true, m: rows, n: outputs, k: inputs, a: x, lda: inputs,
                  b: w.baseAddress!, ldb: inputs, beta: bias == nil ? 0 : 1, c: out, ldc: outputs)
    }
}
