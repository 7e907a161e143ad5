import Dispatch
import Testing
import GraftTensor

@Suite(.serialized) struct WorkerPool {
    /// `BLAS.concurrentPerform` runs every worker index exactly once per call,
    /// also when several threads call it at once (one holds the pool, the others
    /// fall back to Dispatch) and when a worker calls it again from inside.
    @Test func everyWorkerRunsOnceUnderConcurrentAndNestedCalls() {
        let before = BLAS.threadCount
        defer { BLAS.setThreadCount(before) }
        BLAS.setThreadCount(3)
        let (callers, calls, workers, inner) = (4, 50, 37, 3)
        // hits[caller][call][worker * inner + nested]: each slot is written by one worker only.
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: callers * calls * workers * inner)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        nonisolated(unsafe) let slots = hits
        DispatchQueue.concurrentPerform(iterations: callers) { caller in
            for call in 0..<calls {
                let base = (caller * calls + call) * workers * inner
                BLAS.concurrentPerform(workers: workers) { worker in
                    BLAS.concurrentPerform(workers: inner) { nested in slots[base + worker * inner + nested] += 1 }
                }
            }
        }
        #expect(hits.allSatisfy { $0 == 1 })
    }
}
