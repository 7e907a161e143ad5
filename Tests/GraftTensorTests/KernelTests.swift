import Foundation
import Testing
import CKernels
@testable import GraftTensor

/// The vectorised math and the multi-threaded kernels against libm and serial loops.
@Suite(.serialized) struct KernelTests {
    @Test func vectorExpMatchesLibm() {
        let x = Array(stride(from: Float(-87), through: 88, by: 0.0137)) + [-200, 200]
        var y = [Float](repeating: 0, count: x.count)
        _ = graft_exp(x, &y, 0, 1, x.count)
        var worst: Float = 0
        for i in 0..<(x.count - 2) { worst = max(worst, abs(y[i] - expf(x[i])) / expf(x[i])) }
        #expect(worst < 3e-7)
        #expect(y[x.count - 2] >= 0 && y[x.count - 2] < 1e-37)
        #expect(y[x.count - 1].isFinite)
        // Shift, scale and a tail shorter than a vector.
        var small = [Float](repeating: 0, count: 5)
        let sum = graft_exp([1, 2, 3, 4, 5], &small, 3, 2, 5)
        for i in 0..<5 { #expect(abs(small[i] - 2 * expf(Float(i + 1) - 3)) < 1e-6) }
        #expect(abs(sum - small.reduce(0, +) / 2) < 1e-6)
    }

    @Test func geluMatchesLibm() {
        let x = Tensor(shape: [12_001], generating: { Float($0) / 600 - 10 })
        let (value, derivative) = x.geluWithDerivative()
        var (worstValue, worstDerivative): (Float, Float) = (0, 0)
        for (i, v) in x.scalars.enumerated() {
            worstValue = max(worstValue, abs(value.scalars[i] - 0.5 * v * (1 + erff(v / Float(2).squareRoot()))))
            let exact = 0.5 * (1 + erff(v / Float(2).squareRoot())) + v * expf(-v * v / 2) / (2 * Float.pi).squareRoot()
            worstDerivative = max(worstDerivative, abs(derivative.scalars[i] - exact))
        }
        #expect(worstValue < 2e-6 && worstDerivative < 2e-6)
        #expect(x.gelu() == value)
    }

    @Test func softmaxKernelsMatchTheFormulas() {
        for count in [1, 7, 16, 37] {
            let x = (0..<count).map { sin(Float($0)) * 3 }
            let factors = (0..<count).map { Float($0 % 3) * 0.5 }, shifts = (0..<count).map { $0 % 4 == 0 ? Float(-1e9) : 0.25 }
            var row = x
            let logPartition = graft_softmax(&row, factors, shifts, 1, count)
            let z = (0..<count).map { x[$0] * factors[$0] + shifts[$0] }
            let peak = z.max()!, denominator = z.map { expf($0 - peak) }.reduce(0, +)
            for j in 0..<count { #expect(abs(row[j] - expf(z[j] - peak) / denominator) < 1e-6) }
            #expect(abs(logPartition - (peak + logf(denominator))) < 1e-5)
            var scaled = x
            _ = graft_softmax(&scaled, factors, shifts, 0.25, count)
            for j in 0..<count { #expect(abs(scaled[j] - 0.25 * row[j]) < 1e-7) }
            let upstream = (0..<count).map { cos(Float($0)) }
            var gradient = upstream
            graft_softmax_backward(&gradient, row, 0.5, count)
            let dot = zip(upstream, row).map(*).reduce(0, +)
            for j in 0..<count { #expect(abs(gradient[j] - 0.5 * row[j] * (upstream[j] - dot)) < 1e-6) }
        }
    }

    @Test func arithmeticKernelsMatchScalarLoops() {
        let a = Tensor(shape: [7, 37], generating: { sin(Float($0)) * 3 })
        let b = Tensor(shape: [7, 37], generating: { cos(Float($0)) + 2 })
        let row = Tensor(shape: [37], generating: { Float($0) * 0.25 - 4 })
        let operations: [((Tensor, Tensor) -> Tensor, (Float, Float) -> Float)] = [(+, +), (-, -), (*, *), (/, /)]
        for (tensorOp, scalarOp) in operations {
            #expect(tensorOp(a, b).scalars == zip(a.scalars, b.scalars).map(scalarOp))
            #expect(tensorOp(a, row).scalars == a.scalars.indices.map { scalarOp(a.scalars[$0], row.scalars[$0 % 37]) })
        }
        #expect((a * 1.5).scalars == a.scalars.map { $0 * 1.5 })
        #expect((a + 1.5).scalars == a.scalars.map { $0 + 1.5 })
        #expect((-a).scalars == a.scalars.map { -$0 })
        var sum = a
        sum.add(b, scaledBy: 0.5)
        for i in a.scalars.indices { #expect(abs(sum.scalars[i] - (a.scalars[i] + 0.5 * b.scalars[i])) <= 1e-6) }
    }

    @Test func multiThreadedKernelsEqualSingleThreaded() {
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        // Large enough (310,200 elements) for two workers at the default grain.
        let x = Tensor(shape: [600, 517], generating: { sin(Float($0) * 0.37) * 4 })
        func kernels() -> [Tensor] {
            let norm = x.layerNorm(gamma: Tensor(repeating: 1.5, shape: [517]), beta: Tensor(repeating: 0.2, shape: [517]), epsilon: 1e-5)
            let normBackward = Tensor.layerNormBackward(norm, gamma: Tensor(repeating: 1.5, shape: [517]), gradient: x)
            // Rows gathered and scattered back with repeats (the embedding gradient).
            let rows = (0..<600).map { ($0 * 7) % 450 }
            var scattered = x
            scattered.scatterAddRows(rows, x.gatherRows(rows))
            return [x.softmax(), x.logSoftmax(), x.gelu(), x * x, x + Tensor(repeating: 2, shape: [517]), norm.output,
                    normBackward.input, normBackward.gamma!, normBackward.beta!, scattered]
        }
        BLAS.setThreadCount(1)
        let serial = kernels()
        BLAS.setThreadCount(2)
        #expect(kernels() == serial)
    }

    @Test func rangesCoverEveryIndexOnce() {
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        BLAS.setThreadCount(2)
        for count in [0, 1, 65_535, 100_003] {
            var hits = [Int](repeating: 0, count: count)
            hits.withUnsafeMutableBufferPointer { p in
                Parallel.forRanges(count, grain: 1000) { range in for i in range { p[i] += 1 } }
            }
            #expect(hits.allSatisfy { $0 == 1 })
        }
    }
}

/// GEMMs split across workers (blocks of rows or of columns of the output)
/// against the same GEMM run whole, for every transpose combination.
@Suite(.serialized) struct SplitGEMMTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func splitGEMMsEqualTheWholeGEMM(transposeA: Bool, transposeB: Bool) {
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        // Tall (split by rows) and wide (split by columns) products, each at least 2 x 4 MFLOP (two workers).
        for (m, n, k) in [(300, 90, 400), (70, 410, 150)] {
            let a = random(transposeA ? [k, m] : [m, k], seed: 3), b = random(transposeB ? [n, k] : [k, n], seed: 4)
            BLAS.setThreadCount(1)
            let whole = Tensor.matmul(a, b, transposeA: transposeA, transposeB: transposeB)
            BLAS.setThreadCount(2)
            let (counter, split) = GEMMCounter.measure { Tensor.matmul(a, b, transposeA: transposeA, transposeB: transposeB) }
            // Bit-equal on the machines this was written on; on AMD family 25 (Zen 3/4) OpenBLAS 0.3.21
            // rounds a block's products differently from the whole (last bits only), so: equal to float rounding.
            let scale = whole.scalars.map(abs).max() ?? 1
            #expect(split.shape == whole.shape && zip(split.scalars, whole.scalars).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
            #expect(counter.calls == 1 && counter.flops == 2 * m * n * k)
            let reference = naiveMatmul((transposeA ? transpose2D(a) : a).scalars, (transposeB ? transpose2D(b) : b).scalars,
                                        m: m, k: k, n: n)
            #expect(zip(split.scalars, reference).allSatisfy { abs($0 - $1) < 1e-3 })
        }
    }

    /// OpenBLAS runs products of at most 100³ multiply-adds through other
    /// kernels, which round differently: a product just above that size (as
    /// LoRA's rank-r products are) must not be split into blocks below it, or
    /// results would depend on the thread count.
    @Test func productsNearOpenBLASSmallMatrixSizeDoNotDependOnTheThreadCount() {
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        for (m, n, k) in [(1024, 128, 12), (1024, 8, 200), (12, 1024, 128)] {
            let a = random([m, k], seed: 5), b = random([k, n], seed: 6)
            BLAS.setThreadCount(1)
            let one = Tensor.matmul(a, b)
            BLAS.setThreadCount(2)
            #expect(Tensor.matmul(a, b) == one, "\(m) x \(n) x \(k)")
        }
    }
}
