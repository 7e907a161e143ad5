import CBLAS
import CKernels
import Dispatch
import Foundation
import Synchronization

/// Thin wrapper over OpenBLAS: single-precision GEMM with transpose flags, on
/// Graft's own worker threads.
///
/// OpenBLAS itself runs single-threaded: a large GEMM is split into blocks of
/// rows (or columns) of its output, one per worker, so that GEMMs and the
/// element-wise kernels between them (`Parallel`) share one set of threads and
/// no idle OpenBLAS thread spins against them.
public enum BLAS {
    /// Sets the number of threads used by subsequent GEMMs and kernels.
    public static func setThreadCount(_ threads: Int) {
        precondition(threads > 0, "BLAS.setThreadCount: \(threads) threads")
        configured.withLock { $0 = threads }
    }

    /// The number of threads GEMMs and kernels use: `OPENBLAS_NUM_THREADS`
    /// if set, else the number of cores, until `setThreadCount` changes it.
    public static var threadCount: Int { configured.withLock { $0 } }

    private static let configured: Mutex<Int> = {
        openblas_set_num_threads(1)
        let environment = ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"].flatMap(Int.init)
        return Mutex(Swift.max(1, environment ?? ProcessInfo.processInfo.activeProcessorCount))
    }()

    /// Whether the current thread is a worker of `concurrentPerform` (its GEMMs run whole).
    @TaskLocal static var insideWorker = false

    /// Below this many FLOPs per worker a GEMM is not split. Each block stays
    /// above OpenBLAS's small-matrix size (100³ multiply-adds), whose kernels
    /// round differently, so a split product equals the whole one (bit for bit on the
    /// machines measured; on AMD family 25 with OpenBLAS 0.3.21, to float rounding).
    static let flopsPerWorker = 4_000_000

    /// `C = alpha * op(A) * op(B) + beta * C` on row-major buffers, where
    /// `op(X)` is `X` or its transpose. `op(A)` is `m x k`, `op(B)` is `k x n`.
    /// Transposes are BLAS flags: nothing is copied.
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        GEMMCounter.current?.record(m: m, n: n, k: k)
        guard m > 0, n > 0 else { return }
        let workers = insideWorker ? 1 : Swift.min(threadCount, 2 * m * n * k / flopsPerWorker, Swift.max(m, n) / 16)
        func run(m: Int, n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
            cblas_sgemm(
                CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        }
        guard workers > 1 else { return run(m: m, n: n, a: a, b: b, c: c) }
        // Split the longer side of C into `workers` blocks, multiples of 16 where possible.
        let splitRows = m >= n
        let length = splitRows ? m : n
        let step = (length + workers - 1) / workers
        let block = step >= 16 ? (step + 15) / 16 * 16 : step
        concurrentPerform(workers: (length + block - 1) / block) { worker in
            let start = worker * block, size = Swift.min(block, length - start)
            guard size > 0 else { return }
            if splitRows {
                run(m: size, n: n, a: a + (transposeA ? start : start * lda), b: b, c: c + start * ldc)
            } else {
                run(m: m, n: size, a: a, b: b + (transposeB ? start * ldb : start), c: c + start)
            }
        }
    }
}

extension BLAS {
    /// `C = op(A) * op(B)` in double precision on row-major buffers, on the calling
    /// thread: for the small full-batch problems that need it (the logistic-regression
    /// probe's objective), not for the network.
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            a: UnsafePointer<Double>, lda: Int, b: UnsafePointer<Double>, ldb: Int,
                            c: UnsafeMutablePointer<Double>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_dgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
    }
}

extension BLAS {
    /// Column sums of a row-major `rows x columns` matrix, as one GEMV with a
    /// vector of ones: the bias gradient of a linear layer. Written into
    /// `result`, or added to it with `adding`.
    public static func columnSums(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int,
                                  into result: UnsafeMutablePointer<Float>, adding: Bool = false) {
        guard rows > 0, columns > 0 else { return }
        let ones = [Float](repeating: 1, count: rows)
        cblas_sgemv(CblasRowMajor, CblasTrans, Int32(rows), Int32(columns), 1, matrix, Int32(columns),
                    ones, 1, adding ? 1 : 0, result, 1)
    }
}

extension BLAS {
    /// Calls `body(worker)` for every `worker` in `0..<workers` on concurrent
    /// threads: the one way Graft runs work in parallel (GEMM blocks, attention
    /// heads, `Parallel` loops). Each GEMM and `Parallel` loop that `body` runs
    /// runs whole on the thread that calls it, and GEMMs count towards the
    /// caller's `GEMMCounter`.
    ///
    /// The work runs on Graft's worker pool (`graft_pool_run`), whose threads
    /// stay awake between the many short parallel sections of a step; when the
    /// pool is taken (by another thread calling in concurrently), on Dispatch.
    public static func concurrentPerform(workers: Int, _ body: (Int) -> Void) {
        guard workers > 1 else {
            if workers == 1 { $insideWorker.withValue(true) { body(0) } }
            return
        }
        withoutActuallyEscaping(body) { body in
            // The caller guarantees that the workers touch disjoint data.
            var job = PoolJob(body: body, counter: GEMMCounter.current)
            let ran = withUnsafeMutablePointer(to: &job) { job in
                graft_pool_run({ context, worker in
                    context!.assumingMemoryBound(to: PoolJob.self).pointee.run(worker)
                }, job, workers, threadCount)
            }
            if ran == 0 {
                nonisolated(unsafe) let job = job
                DispatchQueue.concurrentPerform(iterations: workers) { job.run($0) }
            }
        }
    }
}

/// One `BLAS.concurrentPerform` call, as its workers see it.
private struct PoolJob {
    let body: (Int) -> Void
    let counter: GEMMCounter?

    func run(_ worker: Int) {
        GEMMCounter.$current.withValue(counter) { BLAS.$insideWorker.withValue(true) { body(worker) } }
    }
}

/// Counts the GEMMs run by the current task while it is installed, so tests and
/// benchmarks can check which products were (not) computed.
public final class GEMMCounter: @unchecked Sendable {
    /// The counter of the current task, if one is installed with `measure`.
    @TaskLocal public static var current: GEMMCounter?

    /// Number of GEMM calls.
    public var calls: Int { lock.withLock { counts.calls } }
    /// Floating-point operations of those calls (`2 m n k` each).
    public var flops: Int { lock.withLock { counts.flops } }

    private var counts = (calls: 0, flops: 0)
    private let lock = NSLock()  // workers of `BLAS.concurrentPerform` record concurrently

    /// A counter with nothing counted yet.
    public init() {}

    func record(m: Int, n: Int, k: Int) {
        lock.withLock {
            counts.calls += 1
            counts.flops += 2 * m * n * k
        }
    }

    /// Runs `body` with a fresh counter installed and returns it with the result.
    public static func measure<R>(_ body: () throws -> R) rethrows -> (counter: GEMMCounter, result: R) {
        let counter = GEMMCounter()
        let result = try $current.withValue(counter) { try body() }
        return (counter, result)
    }
}

extension Tensor {
    /// Matrix product `op(a) * op(b)` with optional transposes given as flags.
    ///
    /// `a` is `[..., m, k]` (or `[..., k, m]` when `transposeA`), `b` is `[k, n]`
    /// or a batch `[..., k, n]` with the same leading dimensions as `a`. A 2-D `b`
    /// is shared by every matrix of a batched `a`.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands must have rank >= 2, got \(a.shape) and \(b.shape)")
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (kb, n) = transposeB ? (bc, br) : (br, bc)
        precondition(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") x \(b.shape)\(transposeB ? "ᵀ" : "")")
        let batchShape = Array(a.shape.dropLast(2))
        let batch = Tensor.count(of: batchShape)
        let sharedB = b.rank == 2
        precondition(sharedB || Array(b.shape.dropLast(2)) == batchShape,
                     "matmul: batch dimensions differ: \(a.shape) and \(b.shape)")
        if k == 0 { return Tensor(zeros: batchShape + [m, n]) }
        var out = Tensor(uninitialized: batchShape + [m, n])  // every element is written by the GEMMs
        if out.count == 0 { return out }
        a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                out.scalars.withUnsafeMutableBufferPointer { pc in
                    if sharedB && !transposeA {
                        // One GEMM over all rows of the batch.
                        BLAS.gemm(transposeA: false, transposeB: transposeB, m: batch * m, n: n, k: k,
                                  a: pa.baseAddress!, lda: ac, b: pb.baseAddress!, ldb: bc,
                                  c: pc.baseAddress!, ldc: n)
                        return
                    }
                    for i in 0..<batch {
                        BLAS.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                                  a: pa.baseAddress! + i * ar * ac, lda: ac,
                                  b: pb.baseAddress! + (sharedB ? 0 : i * br * bc), ldb: bc,
                                  c: pc.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
        return out
    }
}
