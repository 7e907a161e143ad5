import CBLAS

/// Process-wide memory settings for training runs.
public enum Memory {
    /// Asks glibc's allocator to keep large freed blocks for reuse instead of
    /// returning them to the system (and faulting fresh pages in on the next
    /// allocation). Training allocates the same large activations every step,
    /// so this removes most page-fault time; call it once at start-up.
    public static func reuseLargeAllocations() {
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    }
}
