import Foundation

/// A file-system operation that failed while writing a file.
public struct FileWriteError: Error, CustomStringConvertible {
    /// The path the failed operation acted on: the temporary file beside the output, or its directory.
    public let path: String
    /// What was being done (`fsync`, `rename to OUTPUT`, ...).
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
        try synchronize(temporary)
        guard rename(temporary, path) == 0 else { throw systemError(temporary, "rename to \(path)") }
        try synchronize(URL(fileURLWithPath: path).deletingLastPathComponent().path)
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

/// Flushes the file or directory at `path` to disk (`fsync`), checking the close too.
func synchronize(_ path: String) throws {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw systemError(path, "open") }
    guard fsync(descriptor) == 0 else {
        let error = systemError(path, "fsync")
        close(descriptor)
        throw error
    }
    guard close(descriptor) == 0 else { throw systemError(path, "close") }
}

private func systemError(_ path: String, _ operation: String) -> FileWriteError {
    FileWriteError(path: path, operation: operation, reason: String(cString: strerror(errno)))
}
