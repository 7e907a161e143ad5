import ArgumentParser
import Foundation
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

/// The model a command runs: a backbone file, with a task adapter and a language adapter
/// under it if given (`--backbone`, `--adapter`, `--stack-on`).
struct ModelOptions: ParsableArguments {
    @Option(help: "The backbone file (made by `adapt import`; or a fully fine-tuned model, which holds its head).")
    var backbone: String
    @Option(help: "An adapter checkpoint (a Graft .h5 or a peft directory), run with its head.") var adapter: String?
    @Option(help: "A language adapter to run under --adapter: Stack(language, task).") var stackOn: String?

    func validate() throws {
        guard stackOn == nil || adapter != nil else {
            throw ValidationError("--stack-on needs --adapter: the task adapter to stack on the language adapter")
        }
    }

    func load() throws -> AdaptedModel { try AdaptedModel.load(backbone: backbone, adapter: adapter, stackOn: stackOn) }
}

/// `--cache`, shared by every command that reads prepared data.
struct CacheOption: ParsableArguments {
    @Option(help: "The cache root; prepared data goes into its data/ folder (default: $GRAFT_CACHE, or ~/.cache/graft).")
    var cache: String?

    var dataCache: DataCache { DataCache(root: cache) }
}

/// Throws, naming the flag, unless every count that was given is positive.
func checkPositive(_ counts: KeyValuePairs<String, Int?>) throws {
    if let (flag, value) = counts.first(where: { ($0.value ?? 1) <= 0 }) {
        throw ValidationError("\(flag) must be positive, got \(value!)")
    }
}

extension DataSplit: ExpressibleByArgument {}
extension KeyValueSplitter: ExpressibleByArgument {}
extension ContinualSchedule.OptimizerKind: ExpressibleByArgument {}
extension ContinualSchedule.LossClasses: ExpressibleByArgument {}

/// A failure of a command's work (its data, its files, its output), as opposed to a misuse of its
/// flags: reported without the usage text.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writes `data` to `handle` (named `name` in the error), throwing instead of trapping when it cannot.
func write(_ data: Data, to handle: FileHandle, name: String) throws {
    do { try handle.write(contentsOf: data) } catch {
        throw CommandError("cannot write to \(name): \(error.localizedDescription)")
    }
}

/// Writes `warning: MESSAGE` to standard error (a failure to do so is ignored: there is nowhere left to say it).
func warn(_ message: String) {
    try? FileHandle.standardError.write(contentsOf: Data("warning: \(message)\n".utf8))
}

/// Flushes standard output when the process exits and, if what was printed could not be
/// written (`adapt info > /dev/full`), says so and exits with status 74 (EX_IOERR) instead of 0.
func checkStandardOutputAtExit() {
    atexit {
        if fflush(nil) != 0 {
            let reason = String(cString: strerror(errno))
            try? FileHandle.standardError.write(contentsOf: Data("Error: cannot write to standard output: \(reason)\n".utf8))
            _exit(74)
        }
    }
}
