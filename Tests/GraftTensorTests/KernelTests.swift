import Foundation
import Testing
@testable import GraftTensor

/// The vectorised math and the multi-threaded kernels against libm and serial loops.
@Suite(.serialized) struct KernelTests {
    @Test func fastExpMatchesLibm() {
        var worst: Float = 0
        for x in stride(from: Float(-87), through: 88, by: 0.0137) {
            worst = max(worst, abs(FastMath.exp(x) - expf(x)) / expf(x))
        }
        #expect(worst < 3e-7)
        #expect(FastMath.exp(-200) >= 0 && FastMath.exp(-200) < 1e-37)
        #expect(FastMath.exp(200).isFinite)
    }

    @Test func fastErfAndGeluMatchLibm() {
        var worst: Float = 0
        for x in stride(from: Float(-6), through: 6, by: 0.001) {
            let lanes = FastMath.erf(FastMath.Vector(repeating: x))
            worst = max(worst, abs(lanes[0] - erff(x)))
        }
        #expect(worst < 5e-7)
        let x = Tensor(shape: [1000], generating: { Float($0) / 50 - 10 })
        let (value, derivative) = x.geluWithDerivative()
        for (i, v) in x.scalars.enumerated() {
            #expect(abs(value.scalars[i] - 0.5 * v * (1 + erff(v / Float(2).squareRoot()))) < 5e-6)
            let exact = 0.5 * (1 + erff(v / Float(2).squareRoot())) + v * expf(-v * v / 2) / (2 * Float.pi).squareRoot()
            #expect(abs(derivative.scalars[i] - exact) < 5e-6)
        }
        #expect(x.gelu() == value)
    }

    @Test func multiThreadedKernelsEqualSingleThreaded() {
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        let x = Tensor(shape: [300, 517], generating: { sin(Float($0) * 0.37) * 4 })
        func kernels() -> [Tensor] {
            let norm = x.layerNorm(gamma: Tensor(repeating: 1.5, shape: [517]), beta: Tensor(repeating: 0.2, shape: [517]), epsilon: 1e-5)
            return [x.softmax(), x.logSoftmax(), x.gelu(), x * x, x + Tensor(repeating: 2, shape: [517]), norm.output,
                    Tensor.layerNormBackward(norm, gamma: Tensor(repeating: 1.5, shape: [517]), gradient: x).input]
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
            #expect(split == whole)
            #expect(counter.calls == 1 && counter.flops == 2 * m * n * k)
            let reference = naiveMatmul((transposeA ? transpose2D(a) : a).scalars, (transposeB ? transpose2D(b) : b).scalars,
                                        m: m, k: k, n: n)
            #expect(zip(split.scalars, reference).allSatisfy { abs($0 - $1) < 1e-3 })
        }
    }
}
