import GraftAutodiff
import GraftNN
import GraftTensor

/// A NICE additive coupling block (MAD-X's invertible adapter). With the input
/// split in halves `[e1 | e2]`:
///
///     forward:  y1 = e1 + F(e2);   y2 = e2 + G(y1)
///     inverse:  x2 = y2 - G(y1);   x1 = y1 - F(x2)
///
/// `F` and `G` are `Linear(d/2 -> d/(2r)) -> ReLU -> Linear(-> d/2)`.
public final class InvertibleBlock: Module {
    /// `F`: reads the second half `e2` and is added to the first, `y1 = e1 + F(e2)`.
    public let f: BottleneckBlock
    /// `G`: reads `y1` and is added to the second half, `y2 = e2 + G(y1)`.
    public let g: BottleneckBlock

    init(hiddenSize: Int, reductionFactor: Float, generator: inout SeededGenerator) {
        precondition(hiddenSize % 2 == 0, "InvertibleBlock: hidden size \(hiddenSize) must be even")
        let half = hiddenSize / 2
        let inner = InvertibleBlock.innerSize(hiddenSize: hiddenSize, reductionFactor: reductionFactor)
        f = BottleneckBlock(inputSize: half, bottleneckSize: inner, activation: .relu, initialization: .bert, generator: &generator)
        g = BottleneckBlock(inputSize: half, bottleneckSize: inner, activation: .relu, initialization: .bert, generator: &generator)
    }

    /// The bottleneck size of `F` and `G`: `d / 2` divided by the reduction factor.
    static func innerSize(hiddenSize: Int, reductionFactor: Float) -> Int {
        Swift.max(1, Int(Float(hiddenSize / 2) / reductionFactor))
    }

    /// `f` and `g`: parameters `f.down.weight`, ..., `g.up.bias`.
    public var children: [(name: String, module: any Module)] { [("f", f), ("g", g)] }

    private func halves(_ x: Variable) -> (Variable, Variable) {
        let parts = x.split(alongAxis: -1, sizes: [x.shape.last! / 2, x.shape.last! / 2])
        return (parts[0], parts[1])
    }

    /// The forward coupling, `[rows, hidden]` to `[rows, hidden]`.
    public func forward(_ x: Variable, context: ForwardContext) -> Variable {
        let (e1, e2) = halves(x)
        let y1 = e1 + f(e2, context: context)
        let y2 = e2 + g(y1, context: context)
        return Variable.concatenate([y1, y2], alongAxis: -1)
    }

    /// The exact inverse of `forward`.
    public func inverse(_ y: Variable, context: ForwardContext) -> Variable {
        let (y1, y2) = halves(y)
        let x2 = y2 - g(y1, context: context)
        let x1 = y1 - f(x2, context: context)
        return Variable.concatenate([x1, x2], alongAxis: -1)
    }
}
