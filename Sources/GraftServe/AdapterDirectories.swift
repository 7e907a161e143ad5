import Foundation

/// The directories the server may read adapters from at run time
/// (`--adapter-directory`). A path is accepted only if it has no `..`
/// component and, with every symbolic link resolved, lies inside one of them.
public struct AdapterDirectories: Sendable {
    /// The directories, with symbolic links resolved.
    public let roots: [String]

    /// - Throws: `ServeError` (status 400) naming a directory that does not exist.
    public init(_ directories: [String]) throws {
        roots = try directories.map { directory in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
                  let resolved = Self.resolved(directory) else {
                throw ServeError.badRequest("adapter directory \(directory) is not a directory")
            }
            return resolved
        }
    }

    /// The resolved path of `path`: absolute, or relative to the first
    /// directory that holds it.
    /// - Throws: `ServeError`: 403 when no directories were given or the path
    ///   leads outside them, 400 for `..` or an empty path, 404 when no directory holds it.
    public func resolve(_ path: String) throws -> String {
        guard !roots.isEmpty else {
            throw ServeError.forbidden("loading adapters at run time is off: the server was started without --adapter-directory")
        }
        guard !path.isEmpty, !path.contains("\0") else { throw ServeError.badRequest("\"path\" must be a non-empty path") }
        guard !path.split(separator: "/").contains("..") else {
            throw ServeError.badRequest("\"path\" must not contain \"..\": give a path inside an adapter directory")
        }
        // An absolute path outside the directories is refused before the file system is asked about it.
        if path.hasPrefix("/"), !contains(path) { throw ServeError.forbidden("\(path) lies outside the adapter directories") }
        let candidates = path.hasPrefix("/") ? [path] : roots.map { $0 + "/" + path }
        var escapes = false
        for candidate in candidates {
            guard let resolved = Self.resolved(candidate) else { continue }
            if contains(resolved) { return resolved }
            escapes = true
        }
        if escapes { throw ServeError.forbidden("\(path) lies outside the adapter directories") }
        throw ServeError.notFound("no adapter at \(path) in the adapter directories")
    }

    /// Whether `path` is one of the directories or lies under one (by its text).
    private func contains(_ path: String) -> Bool {
        roots.contains { path == $0 || path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }
    }

    /// `realpath(3)`: the absolute path with every link resolved; `nil` if it does not exist.
    private static func resolved(_ path: String) -> String? {
        guard let pointer = realpath(path, nil) else { return nil }
        defer { free(pointer) }
        return String(cString: pointer)
    }
}
