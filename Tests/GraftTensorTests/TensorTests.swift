import Testing
@testable import GraftTensor

/// Naive reference matrix product of row-major `[m, k] x [k, n]`.
func naiveMatmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += a[i * k + p] * b[p * n + j] } } }
    return c
}

func transpose2D(_ t: Tensor) -> Tensor { t.permuted([1, 0]) }

func random(_ shape: [Int], seed: UInt64 = 1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return .normal(shape: shape, generator: &generator)
}

@Suite struct TensorBasics {
    @Test func shapesAndReshape() {
        let t = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(t[1, 2] == 6)
        #expect(t.reshaped([3, -1]).shape == [3, 2])
        #expect(Tensor(scalar: 4).rank == 0)
    }

    @Test func copyOnWrite() {
        let a = Tensor(shape: [2], scalars: [1, 2])
        var b = a
        b[0] = 9
        #expect(a[0] == 1 && b[0] == 9)
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmulMatchesNaive(transposeA: Bool, transposeB: Bool) {
        let (m, k, n) = (5, 7, 3)
        let a = random([m, k], seed: 1), b = random([k, n], seed: 2)
        let expected = naiveMatmul(a.scalars, b.scalars, m: m, k: k, n: n)
        let product = Tensor.matmul(transposeA ? transpose2D(a) : a, transposeB ? transpose2D(b) : b,
                                    transposeA: transposeA, transposeB: transposeB)
        #expect(product.shape == [m, n])
        #expect(product.maxAbsDifference(Tensor(shape: [m, n], scalars: expected)) < 1e-5)
    }

    @Test func batchedMatmul() {
        let a = random([2, 3, 4, 5], seed: 3), b = random([2, 3, 5, 6], seed: 4), shared = random([5, 6], seed: 5)
        let batched = Tensor.matmul(a, b)
        let broadcast = Tensor.matmul(a, shared)
        for batch in 0..<6 {
            let x = Array(a.scalars[(batch * 20)..<((batch + 1) * 20)])
            let y = Array(b.scalars[(batch * 30)..<((batch + 1) * 30)])
            let got = Array(batched.scalars[(batch * 24)..<((batch + 1) * 24)])
            let gotShared = Array(broadcast.scalars[(batch * 24)..<((batch + 1) * 24)])
            let want = naiveMatmul(x, y, m: 4, k: 5, n: 6)
            let wantShared = naiveMatmul(x, shared.scalars, m: 4, k: 5, n: 6)
            #expect(zip(got, want).allSatisfy { abs($0 - $1) < 1e-5 })
            #expect(zip(gotShared, wantShared).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    @Test func broadcasting() {
        let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let row = Tensor(shape: [3], scalars: [10, 20, 30])
        let column = Tensor(shape: [2, 1], scalars: [100, 200])
        #expect((a + row).scalars == [11, 22, 33, 14, 25, 36])
        #expect((a + column).scalars == [101, 102, 103, 204, 205, 206])
        #expect((column * row).shape == [2, 3])
        #expect((column * row).scalars == [1000, 2000, 3000, 2000, 4000, 6000])
        #expect((a + column).summed(toShape: [2, 1]).scalars == [306, 615])
        #expect(a.summed(toShape: [3]).scalars == [5, 7, 9])
        #expect(a.summed(toShape: [1, 3]).scalars == [5, 7, 9])
        // A zero-length dimension broadcasts against 1 to zero, not to 1.
        #expect((Tensor(zeros: [0, 3]) + row).shape == [0, 3])
    }

    @Test func reductions() {
        let a = Tensor(shape: [2, 3], scalars: [1, 5, 3, 4, 2, 6])
        #expect(a.sum(alongAxis: 0).scalars == [5, 7, 9])
        #expect(a.sum(alongAxis: 1, keepingDimension: true).shape == [2, 1])
        #expect(a.mean(alongAxis: -1).scalars == [3, 4])
        #expect(a.max(alongAxis: 1).scalars == [5, 6])
        #expect(a.max(alongAxis: 0).scalars == [4, 5, 6])
        #expect(a.sum() == 21)
    }

    @Test func softmaxFamily() {
        let x = random([4, 9], seed: 8) * 5
        let s = x.softmax()
        for row in 0..<4 { #expect(abs(s.slice(alongAxis: 0, row..<(row + 1)).sum() - 1) < 1e-5) }
        #expect(s.log().maxAbsDifference(x.logSoftmax()) < 1e-4)
        // Stable for large inputs.
        let big = Tensor(shape: [1, 2], scalars: [1000, 1000]).softmax()
        #expect(big.scalars == [0.5, 0.5])
    }

    @Test func maskedSoftmaxEqualsSoftmaxOfScaledScoresPlusMask() {
        let scores = random([2, 3, 2, 4], seed: 5)
        let keyMask = [1, 1, 0, 1, 1, 0, 0, 0]
        let additive = Tensor(shape: [2, 1, 1, 4], scalars: keyMask.map { $0 == 0 ? -1e9 : 0 })
        let reference = (scores * 0.25 + additive).softmax()
        #expect(scores.maskedSoftmax(keyMask: keyMask, scale: 0.25).maxAbsDifference(reference) < 1e-6)
        let (value, derivative) = scores.geluWithDerivative()
        #expect(value.maxAbsDifference(scores.gelu()) == 0 && derivative.maxAbsDifference(scores.geluDerivative()) < 1e-6)
    }

    @Test func activationsAtKnownPoints() {
        let x = Tensor(shape: [3], scalars: [-1, 0, 2])
        // GELU(erf): x * Φ(x); Φ(-1) = 0.158655, Φ(2) = 0.977250.
        #expect(x.gelu().maxAbsDifference(Tensor(shape: [3], scalars: [-0.158655, 0, 1.954500])) < 1e-5)
        #expect(x.relu().scalars == [0, 0, 2])
        #expect(x.sigmoid().maxAbsDifference(Tensor(shape: [3], scalars: [0.268941, 0.5, 0.880797])) < 1e-6)
        #expect(x.silu().maxAbsDifference(Tensor(shape: [3], scalars: [-0.268941, 0, 1.761594])) < 1e-6)
        #expect(x.tanh().maxAbsDifference(Tensor(shape: [3], scalars: [-0.761594, 0, 0.964028])) < 1e-6)
        #expect(Tensor(shape: [1], scalars: [-100]).sigmoid().scalars[0] >= 0)
    }

    @Test func layerNormNormalisesRows() {
        let x = random([3, 16], seed: 4) * 3 + 1
        let gamma = Tensor(repeating: 2, shape: [16]), beta = Tensor(repeating: 0.5, shape: [16])
        let y = x.layerNorm(gamma: gamma, beta: beta, epsilon: 1e-5).output
        for row in 0..<3 {
            let r = (y.slice(alongAxis: 0, row..<(row + 1)) + -0.5) * 0.5
            #expect(abs(r.mean()) < 1e-5)
            #expect(abs((r * r).mean() - 1) < 1e-3)
        }
    }

    @Test func gatherAndScatter() {
        let table = Tensor(shape: [3, 2], scalars: [0, 1, 10, 11, 20, 21])
        #expect(table.gatherRows([2, 0, 2]).scalars == [20, 21, 0, 1, 20, 21])
        var grad = Tensor(zeros: [3, 2])
        grad.scatterAddRows([2, 0, 2], Tensor(repeating: 1, shape: [3, 2]))
        #expect(grad.scalars == [1, 1, 0, 0, 2, 2])
    }

    @Test func concatSplitSlice() {
        let a = random([2, 3, 4], seed: 1), b = random([2, 5, 4], seed: 2)
        let joined = Tensor.concatenate([a, b], alongAxis: 1)
        #expect(joined.shape == [2, 8, 4])
        let parts = joined.split(alongAxis: 1, sizes: [3, 5])
        #expect(parts[0] == a && parts[1] == b)
        #expect(joined.slice(alongAxis: 1, 3..<8) == b)
        #expect(joined[1, 4, 2] == b[1, 1, 2])
    }

    @Test func permuteMatchesIndexing() {
        let x = random([2, 3, 4, 5], seed: 6)
        let y = x.permuted([0, 2, 1, 3])
        #expect(y.shape == [2, 4, 3, 5])
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 { for l in 0..<5 { #expect(y[i, k, j, l] == x[i, j, k, l]) } } } }
        #expect(y.permuted(Tensor.inversePermutation([0, 2, 1, 3])) == x)
    }

    @Test func dropoutIsSeededAndScaled() {
        var g1 = SeededGenerator(seed: 42), g2 = SeededGenerator(seed: 42)
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        BLAS.setThreadCount(1)
        let m1 = DropoutMask(count: 300_001, probability: 0.25, generator: &g1).apply(to: Tensor(repeating: 1, shape: [300_001]))
        BLAS.setThreadCount(2)
        let m2 = DropoutMask(count: 300_001, probability: 0.25, generator: &g2).apply(to: Tensor(repeating: 1, shape: [300_001]))
        #expect(m1 == m2)
        let dropped = m1.scalars.filter { $0 == 0 }.count
        #expect(abs(Double(dropped) / 300_001 - 0.25) < 0.005)
        #expect(m1.scalars.allSatisfy { $0 == 0 || abs($0 - 4.0 / 3.0) < 1e-6 })
        // Blocks are independent streams: the dropped fraction holds in every block.
        for block in stride(from: 0, to: 300_001 - 65_536, by: 65_536) {
            let share = Double(m1.scalars[block..<(block + 65_536)].filter { $0 == 0 }.count) / 65_536
            #expect(abs(share - 0.25) < 0.01)
        }
    }

    @Test func argmaxTopKAndNearestNeighbours() {
        let x = Tensor(shape: [2, 4], scalars: [1, 9, 3, 9, 0, -1, 5, 2])
        #expect(x.argmax() == [1, 2])
        let (values, indices) = x.topK(2)
        #expect(values.scalars == [9, 9, 5, 2] && indices == [1, 3, 2, 3])

        let keys = random([50, 6], seed: 3), queries = random([20, 6], seed: 4)
        let (nearest, distances) = Tensor.nearestNeighbors(of: queries, in: keys)
        for q in 0..<20 {
            var best = Float.infinity, bestIndex = -1
            for k in 0..<50 {
                var d: Float = 0
                for j in 0..<6 { let t = queries[q, j] - keys[k, j]; d += t * t }
                if d < best { best = d; bestIndex = k }
            }
            #expect(nearest[q] == bestIndex)
            #expect(abs(distances[q] - best) < 1e-4)
        }
    }

    @Test func seededGeneratorIsDeterministic() {
        #expect(random([100], seed: 9) == random([100], seed: 9))
        #expect(random([100], seed: 9) != random([100], seed: 10))
        let normals = random([20_000], seed: 11)
        #expect(abs(normals.mean()) < 0.03)
        #expect(abs((normals * normals).mean() - 1) < 0.05)
    }
}
