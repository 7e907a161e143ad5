import Foundation

/// A file-system operation that failed while writing a file.
public struct FileWriteError: Error, CustomStringConvertible {
    /// The file being written (not the temporary file beside it that the operation may have acted on).
    public let path: String
    /// What was being done, on what (`fsync of the temporary file OUTPUT.tmp-...`, `rename over OUTPUT`, ...).
    public let operation: String
    /// The system's reason (`strerror(errno)`).
    public let reason: String

    /// `cannot write PATH: OPERATION failed: REASON`.
    public var description: String { "cannot write \(path): \(operation) failed: \(reason)" }
}

/// Runs `body` on a temporary path beside `path`, flushes the temporary file
/// to disk, renames it over `path` and flushes the directory, so that `path`
/// holds either its previous contents or the complete new file, even after a
/// crash or a full disk; on failure the temporary file is removed and `path`
/// is left as it was.
public func writeAtomically(to path: String, _ body: (String) throws -> Void) throws {
    removeStaleTemporaries(of: path)
    let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
    do {
        try body(temporary)
        try synchronize(temporary, "the temporary file", writing: path)
        guard rename(temporary, path) == 0 else { throw systemError(path, "rename of the temporary file \(temporary) over it") }
        try synchronize(URL(fileURLWithPath: path).deletingLastPathComponent().path, "its directory", writing: path)
    } catch {
        unlink(temporary)
        throw error
    }
}

/// Removes the temporary files (`PATH.tmp-PID-*`) that writes of `path` by
/// processes no longer running left behind (killed mid-write).
func removeStaleTemporaries(of path: String) {
    let url = URL(fileURLWithPath: path)
    let prefix = url.lastPathComponent + ".tmp-"
    let directory = url.deletingLastPathComponent().path
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
        guard let process = pid_t(name.dropFirst(prefix.count).prefix { $0 != "-" }),
              kill(process, 0) == -1, errno == ESRCH else { continue }
        unlink(directory + "/" + name)
    }
}

/// Writes `data` to `path` atomically (see `writeAtomically(to:_:)`), creating its directory if needed.
public func writeAtomically(_ data: Data, to path: String) throws {
    try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                            withIntermediateDirectories: true)
    try writeAtomically(to: path) { try data.write(to: URL(fileURLWithPath: $0)) }
}

/// Flushes the file or directory at `path` (`role`: what it is to `output`) to disk (`fsync`), checking the close too.
private func synchronize(_ path: String, _ role: String, writing output: String) throws {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw systemError(output, "open of \(role) \(path)") }
    guard fsync(descriptor) == 0 else {
        let error = systemError(output, "fsync of \(role) \(path)")
        close(descriptor)
        throw error
    }
    guard close(descriptor) == 0 else { throw systemError(output, "close of \(role) \(path)") }
}

/// The error of the failed system call `operation` (from `errno`) while writing `output`.
private func systemError(_ output: String, _ operation: String) -> FileWriteError {
    FileWriteError(path: output, operation: operation, reason: String(cString: strerror(errno)))
}
