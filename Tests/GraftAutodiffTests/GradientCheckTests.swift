import GraftNN
import Testing
@testable import GraftAutodiff
import GraftTensor

func random(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return .normal(shape: shape, standardDeviation: scale, generator: &generator)
}

/// Asserts that the tape gradient of `f` matches finite differences for every input.
func expectGradientsMatch(_ inputs: [Tensor], epsilon: Float = 1e-2, tolerance: Double = 1e-3,
                          sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Variable]) -> Variable) {
    let errors = GradientCheck.relativeErrors(inputs: inputs, epsilon: epsilon, f)
    for (i, error) in errors.enumerated() {
        #expect(error < tolerance, "input \(i): relative error \(error)", sourceLocation: sourceLocation)
    }
}

/// Finite-difference checks for every differentiable operation.
@Suite struct GradientChecks {
    @Test func arithmeticWithBroadcasting() {
        let a = random([3, 4], seed: 1), b = random([4], seed: 2), c = random([3, 1], seed: 3)
        expectGradientsMatch([a, b]) { $0[0] + $0[1] }
        expectGradientsMatch([a, c]) { $0[0] - $0[1] }
        expectGradientsMatch([a, b]) { $0[0] * $0[1] }
        expectGradientsMatch([a, c + 3]) { $0[0] / $0[1] }
        expectGradientsMatch([a]) { -($0[0] * 2.5 + 1) }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmul(transposeA: Bool, transposeB: Bool) {
        let a = random(transposeA ? [5, 3] : [3, 5], seed: 4), b = random(transposeB ? [2, 5] : [5, 2], seed: 5)
        expectGradientsMatch([a, b]) { Variable.matmul($0[0], $0[1], transposeA: transposeA, transposeB: transposeB) }
    }

    @Test func batchedMatmul() {
        let a = random([2, 3, 4], seed: 6), b = random([2, 5, 4], seed: 7), shared = random([4, 6], seed: 8)
        expectGradientsMatch([a, b]) { Variable.matmul($0[0], $0[1], transposeB: true) }
        expectGradientsMatch([a, shared]) { Variable.matmul($0[0], $0[1]) }
    }

    @Test func fusedLinear() {
        let x = random([2, 3, 5], seed: 30), w = random([4, 5], seed: 31), b = random([4], seed: 32)
        expectGradientsMatch([x, w, b]) { Variable.linear($0[0], weight: $0[1], bias: $0[2]) }
        expectGradientsMatch([x, w]) { Variable.linear($0[0], weight: $0[1], bias: nil) }
    }

    @Test func reductions() {
        let x = random([3, 4, 2], seed: 9)
        expectGradientsMatch([x]) { $0[0].sum(alongAxis: 1) }
        expectGradientsMatch([x]) { $0[0].mean(alongAxis: -1, keepingDimension: true) }
        expectGradientsMatch([x]) { $0[0].max(alongAxis: 0) }
        expectGradientsMatch([x]) { $0[0].sum() }
        expectGradientsMatch([x]) { $0[0].mean() }
    }

    @Test func activations() {
        let x = random([4, 6], seed: 10, scale: 2)
        expectGradientsMatch([x]) { $0[0].gelu() }
        expectGradientsMatch([x]) { $0[0].sigmoid() }
        expectGradientsMatch([x]) { $0[0].silu() }
        expectGradientsMatch([x]) { $0[0].tanh() }
        expectGradientsMatch([x]) { $0[0].exp() }
        expectGradientsMatch([x.map { abs($0) + 0.5 }]) { $0[0].log() }
        // Keep ReLU inputs away from the kink at 0.
        expectGradientsMatch([x.map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }]) { $0[0].relu() }
    }

    @Test func softmaxFamily() {
        let x = random([3, 7], seed: 11, scale: 2)
        expectGradientsMatch([x]) { $0[0].softmax() }
        expectGradientsMatch([x]) { $0[0].logSoftmax() }
        let scores = random([2, 2, 3, 4], seed: 12, scale: 2)
        expectGradientsMatch([scores]) { $0[0].maskedSoftmax(keyMask: [1, 1, 1, 0, 1, 1, 0, 0], scale: 0.5) }
    }

    @Test func layerNorm() {
        let x = random([4, 8], seed: 12, scale: 2), gamma = random([8], seed: 13), beta = random([8], seed: 14)
        expectGradientsMatch([x, gamma, beta], epsilon: 3e-3) { $0[0].layerNorm(gamma: $0[1], beta: $0[2], epsilon: 1e-5) }
    }

    @Test func shapeOperations() {
        let x = random([2, 3, 4], seed: 15), y = random([2, 2, 4], seed: 16)
        expectGradientsMatch([x]) { $0[0].reshaped([6, 4]) }
        expectGradientsMatch([x]) { $0[0].permuted([2, 0, 1]) }
        expectGradientsMatch([x]) { $0[0].slice(alongAxis: 1, 1..<3) }
        expectGradientsMatch([x, y]) { Variable.concatenate([$0[0], $0[1]], alongAxis: 1) }
        expectGradientsMatch([x]) { v in
            let parts = v[0].split(alongAxis: 2, sizes: [1, 3])
            return parts[0] * parts[1].sum(alongAxis: 2, keepingDimension: true)
        }
    }

    @Test func embeddingGather() {
        let table = random([5, 3], seed: 17)
        expectGradientsMatch([table]) { Variable.gatherRows($0[0], [4, 0, 4, 2]) }
    }

    @Test func dropoutUsesTheSameMaskInBothPasses() {
        let x = random([4, 5], seed: 18)
        expectGradientsMatch([x]) { v in
            var generator = SeededGenerator(seed: 3)
            return v[0].dropout(probability: 0.3, generator: &generator)
        }
    }

    @Test func losses() {
        let logits = random([5, 4], seed: 19, scale: 2)
        let targets = [1, Variable.ignoreIndex, 3, 0, 3]
        expectGradientsMatch([logits]) { Variable.crossEntropy(logits: $0[0], targets: targets) }
        expectGradientsMatch([logits]) { Variable.crossEntropy(logits: $0[0], targets: targets, classWeights: [0.5, 2, 1, 3]) }
        let labels = Tensor(shape: [5, 4]) { Float($0 % 3 == 0 ? 1 : 0) }
        expectGradientsMatch([logits]) { Variable.binaryCrossEntropy(logits: $0[0], targets: labels) }
        expectGradientsMatch([logits]) { Variable.meanSquaredError($0[0], labels) }
    }

    @Test func fusedLinearCrossEntropy() {
        let x = random([5, 3], seed: 24), w = random([6, 3], seed: 25), b = random([6], seed: 26)
        let targets = [1, Variable.ignoreIndex, 5, 0, 5]
        for rowsPerBlock in [1, 2, 8] {
            expectGradientsMatch([x, w, b]) { v in
                Variable.linearCrossEntropy(v[0], weight: v[1], bias: v[2], targets: targets, rowsPerBlock: rowsPerBlock)
            }
        }
        expectGradientsMatch([x, w]) { v in Variable.linearCrossEntropy(v[0], weight: v[1], bias: nil, targets: targets) }
    }

    @Test func composedTwoLayerNetwork() {
        let x = random([6, 5], seed: 20), w1 = random([8, 5], seed: 21), b1 = random([8], seed: 22)
        let w2 = random([3, 8], seed: 23)
        expectGradientsMatch([x, w1, b1, w2]) { v in
            let hidden = (Variable.matmul(v[0], v[1], transposeB: true) + v[2]).gelu()
            return Variable.crossEntropy(logits: Variable.matmul(hidden, v[3], transposeB: true), targets: [0, 1, 2, 0, 1, 2])
        }
    }
}
