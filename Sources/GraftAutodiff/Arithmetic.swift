import GraftTensor

/// Element-wise arithmetic with broadcasting; each pullback sums the gradient
/// back to its operand's shape. Pullbacks keep shapes, and operand values only
/// where the other operand's gradient needs them.
extension Variable {
    /// `a + b` element-wise, broadcasting.
    public static func + (a: Variable, b: Variable) -> Variable {
        let (shapeA, shapeB) = (a.shape, b.shape)
        return differentiable(a.value + b.value, a, b) { g, needed in
            [needed[0] ? g.summed(toShape: shapeA) : nil, needed[1] ? g.summed(toShape: shapeB) : nil]
        }
    }

    /// `a - b` element-wise, broadcasting.
    public static func - (a: Variable, b: Variable) -> Variable {
        let (shapeA, shapeB) = (a.shape, b.shape)
        return differentiable(a.value - b.value, a, b) { g, needed in
            [needed[0] ? g.summed(toShape: shapeA) : nil, needed[1] ? (-g).summed(toShape: shapeB) : nil]
        }
    }

    /// `a * b` element-wise, broadcasting.
    public static func * (a: Variable, b: Variable) -> Variable {
        let (shapeA, shapeB) = (a.shape, b.shape)
        let (valueA, valueB) = (b.isTracked ? a.value : nil, a.isTracked ? b.value : nil)
        return differentiable(a.value * b.value, a, b) { g, needed in
            [needed[0] ? (g * valueB!).summed(toShape: shapeA) : nil,
             needed[1] ? (g * valueA!).summed(toShape: shapeB) : nil]
        }
    }

    /// `a / b` element-wise, broadcasting.
    public static func / (a: Variable, b: Variable) -> Variable {
        let quotient = a.value / b.value
        let (shapeA, shapeB, divisor) = (a.shape, b.shape, b.value)
        let kept = b.isTracked ? quotient : nil
        return differentiable(quotient, a, b) { g, needed in
            [needed[0] ? (g / divisor).summed(toShape: shapeA) : nil,
             needed[1] ? (-(g * kept!) / divisor).summed(toShape: shapeB) : nil]
        }
    }

    /// Every element of `a` times `s`.
    public static func * (a: Variable, s: Float) -> Variable {
        differentiable(a.value * s, a) { g, _ in [g * s] }
    }

    /// Every element of `a` times `s`.
    public static func * (s: Float, a: Variable) -> Variable { a * s }

    /// `s` added to every element of `a`.
    public static func + (a: Variable, s: Float) -> Variable {
        differentiable(a.value + s, a) { g, _ in [g] }
    }

    /// `-a` element-wise.
    public static prefix func - (a: Variable) -> Variable { a * -1 }
}

/// Matrix products.
extension Variable {
    /// `op(a) * op(b)`; see `Tensor.matmul`. A 2-D `b` is shared by every row
    /// of a batched `a` (as a Linear layer's weight).
    public static func matmul(_ a: Variable, _ b: Variable, transposeA: Bool = false, transposeB: Bool = false) -> Variable {
        if b.value.rank == 2 && a.value.rank > 2 {
            precondition(!transposeA, "matmul: a shared 2-D right operand needs an untransposed left operand")
            let rows = a.reshaped([-1, a.shape[a.value.rank - 1]])
            let product = matmul(rows, b, transposeB: transposeB)
            return product.reshaped(Array(a.shape.dropLast()) + [product.shape[1]])
        }
        let product = Tensor.matmul(a.value, b.value, transposeA: transposeA, transposeB: transposeB)
        return differentiable(product, a, b) { g, needed in
            let (x, y) = (a.value, b.value)
            var gradA: Tensor?, gradB: Tensor?
            switch (transposeA, transposeB) {
            case (false, false):
                if needed[0] { gradA = .matmul(g, y, transposeB: true) }
                if needed[1] { gradB = .matmul(x, g, transposeA: true) }
            case (false, true):
                if needed[0] { gradA = .matmul(g, y) }
                if needed[1] { gradB = .matmul(g, x, transposeA: true) }
            case (true, false):
                if needed[0] { gradA = .matmul(y, g, transposeB: true) }
                if needed[1] { gradB = .matmul(x, g) }
            case (true, true):
                if needed[0] { gradA = .matmul(y, g, transposeA: true, transposeB: true) }
                if needed[1] { gradB = .matmul(g, x, transposeA: true, transposeB: true) }
            }
            return [gradA, gradB]
        }
    }
}
