import Foundation
import GraftNN
import Testing
@testable import GraftAutodiff
import GraftTensor

@Suite struct TapeBehaviour {
    @Test func frozenWeightsRunNoWeightGradientGEMM() {
        var generator = SeededGenerator(seed: 1)
        let frozen = Linear(inputSize: 16, outputSize: 16, generator: &generator)
        let trainable = Linear(inputSize: 16, outputSize: 4, generator: &generator)
        frozen.setTrainable(false)
        let x = random([8, 16], seed: 2)

        // Frozen layer below a trainable one: forward 2 GEMMs, backward only the
        // trainable weight's gradient (the input gradient of the frozen layer is
        // not needed because nothing below it is tracked).
        let (belowCounter, _) = GEMMCounter.measure {
            let tape = Tape()
            let loss = trainable(frozen(Variable(x), tape: tape), tape: tape).sum()
            tape.backward(loss)
        }
        #expect(belowCounter.calls == 3)
        #expect(frozen.weight.grad == nil && frozen.bias?.grad == nil)
        #expect(trainable.weight.grad != nil)

        // Frozen layer above a trainable one: the input gradient flows through the
        // frozen layer (1 GEMM) but its weight gradient is never computed.
        trainable.weight.zeroGradient()
        let head = Linear(inputSize: 4, outputSize: 16, generator: &generator)
        let (aboveCounter, _) = GEMMCounter.measure {
            let tape = Tape()
            let loss = frozen(head(trainable(Variable(x), tape: tape), tape: tape), tape: tape).sum()
            tape.backward(loss)
        }
        // forward 3; backward: frozen dX, head dW + dX, trainable dW (no dX: x is constant).
        #expect(aboveCounter.calls == 3 + 4)
        #expect(frozen.weight.grad == nil)
        #expect(head.weight.grad != nil && trainable.weight.grad != nil)
    }

    @Test func noTapeRecordsNothing() {
        var generator = SeededGenerator(seed: 3)
        let layer = Linear(inputSize: 4, outputSize: 2, generator: &generator)
        let y = layer(Variable(random([3, 4], seed: 4)))
        #expect(!y.isTracked)
    }

    @Test func tiedWeightsAccumulateOneGradient() {
        let shared = Parameter(random([3, 3], seed: 5))
        let tape = Tape()
        let x = Variable(random([2, 3], seed: 6))
        let w1 = tape.variable(shared), w2 = tape.variable(shared)
        let loss = Variable.matmul(Variable.matmul(x, w1), w2).sum()
        tape.backward(loss)
        // Reference: the gradient of sum(x W W) w.r.t. W, by finite differences.
        let errors = GradientCheck.relativeErrors(inputs: [shared.value]) { v in
            Variable.matmul(Variable.matmul(Variable(x.value), v[0]), v[0])
        }
        #expect(errors[0] < 1e-3)
        let direct = GradientCheck.relativeErrors(inputs: [shared.value], seed: 1) { v in
            Variable.matmul(Variable.matmul(Variable(x.value), v[0]), v[0]).sum()
        }
        #expect(direct[0] < 1e-3)
        #expect(shared.grad != nil)
        // Gradient of sum(x W W): dW = xᵀ 1 Wᵀ + (x W)ᵀ 1.
        let ones = Tensor(repeating: 1, shape: [2, 3])
        let expected = Tensor.matmul(Tensor.matmul(x.value, ones, transposeA: true), shared.value, transposeB: true)
            + Tensor.matmul(Tensor.matmul(x.value, shared.value), ones, transposeA: true)
        #expect(shared.grad!.maxAbsDifference(expected) < 1e-4)
    }

    @Test func backwardClearsTheTape() {
        let tape = Tape()
        let x = tape.watch(random([4], seed: 7))
        let y = (x * x).sum()
        #expect(tape.count == 3)
        let gradients = tape.backward(y)
        #expect(tape.count == 0)
        #expect(gradients[x]!.maxAbsDifference(x.value * 2) < 1e-6)
    }

    @Test func recomputedActivationsGiveTheSameGradients() {
        var generator = SeededGenerator(seed: 3)
        let layer = Linear(inputSize: 6, outputSize: 6, generator: &generator)
        let x = random([5, 6], seed: 4)
        func block(_ x: Variable, _ tape: Tape) -> Variable { (layer(x, tape: tape).gelu() * x + x).tanh() }
        // The same layer in two blocks: its gradient sums over both recomputations.
        func run(recomputing: Bool) -> (loss: Float, input: Tensor, weight: Tensor, bias: Tensor) {
            let tape = Tape()
            let input = tape.watch(x)
            let apply = { (x: Variable) in recomputing ? tape.recomputing(x, block) : block(x, tape) }
            let output = apply(apply(input))
            let loss = (output * output).sum()
            let gradients = tape.backward(loss)
            defer { layer.weight.zeroGradient(); layer.bias!.zeroGradient() }
            return (loss.value.scalar, gradients[input]!, layer.weight.grad!, layer.bias!.grad!)
        }
        let plain = run(recomputing: false), recomputed = run(recomputing: true)
        #expect(plain.loss == recomputed.loss)
        #expect(plain.input.maxAbsDifference(recomputed.input) < 1e-6)
        #expect(plain.weight.maxAbsDifference(recomputed.weight) < 1e-6)
        #expect(plain.bias.maxAbsDifference(recomputed.bias) < 1e-6)
        #expect(plain.weight.maxAbsDifference(Tensor(zeros: [6, 6])) > 1e-3)

        let errors = GradientCheck.relativeErrors(inputs: [x], epsilon: 3e-3) { v in
            (v[0].tape ?? Tape()).recomputing(v[0], block)
        }
        #expect(errors[0] < 1e-3)
    }

    @Test func parametersAreReportedWhenTheirGradientIsComplete() {
        var generator = SeededGenerator(seed: 5)
        let first = Linear(inputSize: 4, outputSize: 4, generator: &generator)
        let second = Linear(inputSize: 4, outputSize: 4, generator: &generator)
        let tape = Tape()
        // `first` is used twice, before and after `second`.
        let loss = first(second(first(Variable(random([3, 4], seed: 6)), tape: tape), tape: tape), tape: tape).sum()
        var reported: [(Parameter, Tensor)] = []
        tape.backward(loss) { reported.append(($0, $0.grad!)) }
        #expect(reported.map { ObjectIdentifier($0.0) } == [second.bias!, second.weight, first.bias!, first.weight].map(ObjectIdentifier.init))
        for (parameter, gradient) in reported { #expect(parameter.grad! == gradient) }
    }

    @Test func crossEntropyMatchesDefinitionAndIgnoresIndex() {
        let logits = Tensor(shape: [2, 3], scalars: [1, 2, 3, 0, 0, 0])
        let loss = Variable.crossEntropy(logits: Variable(logits), targets: [2, Variable.ignoreIndex])
        let expected = -logf(expf(3) / (expf(1) + expf(2) + expf(3)))
        #expect(abs(loss.value.scalar - expected) < 1e-6)
        let allIgnored = Variable.crossEntropy(logits: Variable(logits), targets: [-100, -100])
        #expect(allIgnored.value.scalar == 0)
    }

    /// PyTorch's `CrossEntropyLoss(weight:)`: `Σ w[t_i] l_i / Σ w[t_i]` over the rows not ignored.
    @Test func weightedCrossEntropyIsTheWeightedMean() {
        let logits = Tensor(shape: [3, 3], scalars: [1, 2, 3, 0, 0, 0, 2, -1, 0.5])
        func term(_ row: Int, _ target: Int) -> Float {
            let z = (0..<3).map { logits.scalars[row * 3 + $0] }
            return log(z.map { expf($0) }.reduce(0, +)) - z[target]
        }
        let weights: [Float] = [0.25, 4, 1]
        let loss = Variable.crossEntropy(logits: Variable(logits), targets: [2, Variable.ignoreIndex, 0], classWeights: weights)
        let expected = (weights[2] * term(0, 2) + weights[0] * term(2, 0)) / (weights[2] + weights[0])
        #expect(abs(loss.value.scalar - expected) < 1e-6)
        let uniform = Variable.crossEntropy(logits: Variable(logits), targets: [2, 1, 0], classWeights: [2, 2, 2])
        let plain = Variable.crossEntropy(logits: Variable(logits), targets: [2, 1, 0])
        #expect(abs(uniform.value.scalar - plain.value.scalar) < 1e-6)
    }

    @Test func fusedLinearCrossEntropyEqualsTheComposition() {
        var generator = SeededGenerator(seed: 7)
        let x = Tensor.normal(shape: [70, 16], generator: &generator)
        let w = Tensor.normal(shape: [300, 16], generator: &generator), b = Tensor.normal(shape: [300], generator: &generator)
        let targets = (0..<70).map { $0 % 9 == 0 ? Variable.ignoreIndex : ($0 * 37) % 300 }
        func run(_ fused: Bool) -> [Tensor] {
            let tape = Tape()
            let (vx, vw, vb) = (tape.watch(x), tape.watch(w), tape.watch(b))
            let loss = fused
                ? Variable.linearCrossEntropy(vx, weight: vw, bias: vb, targets: targets, rowsPerBlock: 32)
                : Variable.crossEntropy(logits: Variable.linear(vx, weight: vw, bias: vb), targets: targets)
            let gradients = tape.backward(loss, seed: Tensor(scalar: 2))
            return [loss.value, gradients[vx]!, gradients[vw]!, gradients[vb]!]
        }
        for (fused, composed) in zip(run(true), run(false)) {
            #expect(fused.shape == composed.shape)
            for (a, b) in zip(fused.scalars, composed.scalars) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
        }
    }

    @Test func binaryCrossEntropyIsStableForLargeLogits() {
        let loss = Variable.binaryCrossEntropy(logits: Variable(Tensor(shape: [2], scalars: [100, -100])),
                                               targets: Tensor(shape: [2], scalars: [1, 0]))
        #expect(loss.value.scalar.isFinite && loss.value.scalar < 1e-6)
    }

    @Test func sameSeedGivesBitIdenticalTraining() {
        func run() -> [Float] {
            var generator = SeededGenerator(seed: 99)
            let layer = Linear(inputSize: 8, outputSize: 3, generator: &generator)
            var losses: [Float] = []
            for _ in 0..<5 {
                let tape = Tape()
                let x = Variable(Tensor.normal(shape: [4, 8], generator: &generator))
                let hidden = layer(x, tape: tape).dropout(probability: 0.2, generator: &generator)
                let loss = Variable.crossEntropy(logits: hidden, targets: [0, 1, 2, 1])
                tape.backward(loss)
                for (_, p) in layer.namedParameters() { p.value.add(p.grad!, scaledBy: -0.1); p.zeroGradient() }
                losses.append(loss.value.scalar)
            }
            return losses + layer.weight.value.scalars
        }
        #expect(run() == run())
    }
}
