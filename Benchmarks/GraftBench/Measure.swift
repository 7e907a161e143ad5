import AllocationCounter
import Foundation

/// The median time of a benchmark body and the heap allocations of one call.
struct Measurement {
    var seconds: Double
    var allocations: UInt64
    var allocatedBytes: UInt64

    /// Times `repetitions` calls of `body` after one warm-up call (the median),
    /// then counts the allocations of one more call.
    init(repetitions: Int, _ body: () -> Void) {
        body()
        let clock = ContinuousClock()
        var samples: [Double] = []
        for _ in 0..<repetitions {
            let elapsed = clock.measure(body)
            samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        }
        seconds = samples.sorted()[samples.count / 2]
        let (count, bytes) = (graft_allocation_count(), graft_allocated_bytes())
        body()
        allocations = graft_allocation_count() - count
        allocatedBytes = graft_allocated_bytes() - bytes
    }

    /// `| name | time | throughput | ratio | allocations | MiB |`, a row of the kernel table.
    func row(_ name: String, throughput: String, ratio: String = "-") -> String {
        let time = seconds < 1e-3 ? String(format: "%.2f µs", seconds * 1e6) : String(format: "%.2f ms", seconds * 1e3)
        return "| \(name) | \(time) | \(throughput) | \(ratio) | \(allocations) | \(String(format: "%.1f", Double(allocatedBytes) / 1048576)) |"
    }
}
