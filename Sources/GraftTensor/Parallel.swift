/// Data-parallel loops over Graft's worker threads (`BLAS.threadCount`), for
/// the element-wise and row-wise kernels between GEMMs.
public enum Parallel {
    /// Calls `body` on disjoint ranges that together cover `0..<count`. Runs on
    /// several threads (`BLAS.concurrentPerform`) when there are more threads
    /// than one and at least `2 * grain` items, and the caller is not already a
    /// worker; otherwise `body(0..<count)` runs on the caller's thread.
    /// `body` must only write to the items of its own range. With the worker
    /// pool's threads awake between sections, splitting costs about a
    /// microsecond; at the default grain a `[1024, 128]` activation goes to up
    /// to 4 workers (grains of 16,384 to 131,072 measured alike on the tiny
    /// training step).
    public static func forRanges(_ count: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
        let workers = BLAS.insideWorker ? 1 : Swift.min(BLAS.threadCount, count / Swift.max(grain, 1))
        guard workers > 1 else {
            if count > 0 { body(0..<count) }
            return
        }
        BLAS.concurrentPerform(workers: workers) { worker in
            body((count * worker / workers)..<(count * (worker + 1) / workers))
        }
    }

    /// `forRanges` over the rows of a `rows x width` layout, with the grain
    /// chosen so that each worker gets at least `grain` elements.
    public static func forRows(_ rows: Int, width: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
        forRanges(rows, grain: Swift.max(1, grain / Swift.max(width, 1)), body)
    }

    /// `forRanges` over the columns of a `rows x columns` row-major layout, for
    /// sums down the columns: each worker takes a range of columns and adds
    /// over the rows in order, so every sum is the same at any thread count.
    public static func forColumns(_ columns: Int, rows: Int, grain: Int = 32_768, _ body: (Range<Int>) -> Void) {
        forRows(columns, width: rows, grain: grain, body)
    }
}
