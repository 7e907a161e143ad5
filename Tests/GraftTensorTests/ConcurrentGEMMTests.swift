import Testing
import GraftTensor

@Suite struct ConcurrentGEMM {
    /// Single-threaded GEMMs called from several threads at once (as the fused
    /// attention does) give exactly the results of the same GEMMs run in turn,
    /// and are all counted by the caller's counter.
    @Test func concurrentSingleThreadedGEMMsEqualTheSequentialRun() {
        // 24 products of 128 x 64 strided column blocks (heads) of one [128, 24 * 64] matrix.
        let (rows, blocks, width) = (128, 24, 64)
        let a = random([rows, blocks * width], seed: 1), b = random([rows, blocks * width], seed: 2)
        func products(workers: Int) -> [Float] {
            var c = [Float](repeating: 0, count: blocks * rows * rows)
            a.scalars.withUnsafeBufferPointer { a in
                b.scalars.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        BLAS.concurrentPerform(workers: workers) { worker in
                            for block in stride(from: worker, to: blocks, by: workers) {
                                BLAS.gemm(transposeA: false, transposeB: true, m: rows, n: rows, k: width,
                                          a: a.baseAddress! + block * width, lda: blocks * width,
                                          b: b.baseAddress! + block * width, ldb: blocks * width,
                                          c: c.baseAddress! + block * rows * rows, ldc: rows)
                            }
                        }
                    }
                }
            }
            return c
        }
        let sequential = products(workers: 1)
        for _ in 0..<5 {
            let (counter, concurrent) = GEMMCounter.measure { products(workers: 4) }
            #expect(concurrent == sequential)
            #expect(counter.calls == blocks)
        }
        let expected = naiveMatmul(a.slice(alongAxis: 1, 0..<width).scalars,
                                   transpose2D(b.slice(alongAxis: 1, 0..<width)).scalars, m: rows, k: width, n: rows)
        #expect(zip(sequential[0..<(rows * rows)], expected).allSatisfy { abs($0 - $1) < 1e-3 })
    }
}
