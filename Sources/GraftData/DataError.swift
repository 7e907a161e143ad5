/// An error from reading, checking or preparing a dataset. Each names the file
/// (and line) involved and what was expected versus found.
public enum DataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file (or directory) exists at `path`.
    case missingFile(path: String)
    /// Line `line` (1-based) of `path` cannot be read; `reason` says what was expected and found.
    case malformedLine(path: String, line: Int, reason: String)
    /// `path` holds no examples.
    case emptyDataset(path: String)
    /// Line `line` (1-based; 0 where the line is not known) of `path` has a label outside the dataset's label set
    /// (for a set whose labels come from its training split: a dev or test label that training never has).
    case unknownLabel(path: String, line: Int, label: String, expected: [String])
    /// A verse reference outside the 66-book canon (see ``BibleBook/canon``).
    case invalidReference(book: Int, chapter: Int, verse: Int)
    /// The SHA-256 of `path` is not the one the recipe was made with.
    case checksumMismatch(path: String, expected: String, found: String)
    /// A raw source does not look as the recipe expects; `reason` says how.
    case unexpectedContent(path: String, reason: String)
    /// An external command (`pip`, `apt-get`, ...) failed.
    case commandFailed(command: String, status: Int32)

    /// A sentence saying what was expected and what was found.
    public var description: String {
        switch self {
        case .missingFile(let path):
            "file not found: \(path)"
        case .malformedLine(let path, let line, let reason):
            "\(path):\(line): \(reason)"
        case .emptyDataset(let path):
            "\(path) holds no examples; expected at least one"
        case .unknownLabel(let path, let line, let label, let expected):
            "\(line > 0 ? "\(path):\(line)" : path): unknown label \"\(label)\"; expected one of \(expected.joined(separator: ", "))"
        case .invalidReference(let book, let chapter, let verse):
            "no such verse: book \(book), chapter \(chapter), verse \(verse); expected books 1...66 "
                + "and chapters within each book's chapter count"
        case .checksumMismatch(let path, let expected, let found):
            "\(path) has SHA-256 \(found); expected \(expected)"
        case .unexpectedContent(let path, let reason):
            "\(path): \(reason)"
        case .commandFailed(let command, let status):
            status == 127
                ? "`\(command)` failed: command not found"
                : "`\(command)` exited with status \(status) (its messages are above)"
        }
    }
}
