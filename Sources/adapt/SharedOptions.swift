import ArgumentParser
import Graft

/// `--threads`, shared by every command that runs the backbone.
struct ThreadsOption: ParsableArguments {
    @Option(help: "OpenBLAS threads (default: OPENBLAS_NUM_THREADS or all cores).") var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be positive, got \(threads)") }
    }

    /// Sets the thread count if one was given.
    func apply() throws {
        try validate()
        if let threads { BLAS.setThreadCount(threads) }
    }
}

/// `--cache`, shared by every command that reads prepared data.
struct CacheOption: ParsableArguments {
    @Option(help: "The cache root; prepared data goes into its data/ folder (default: $GRAFT_CACHE, or ~/.cache/graft).")
    var cache: String?

    var dataCache: DataCache { DataCache(root: cache) }
}

extension DataSplit: ExpressibleByArgument {}
extension KeyValueSplitter: ExpressibleByArgument {}
