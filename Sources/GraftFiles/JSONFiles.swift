import Foundation

/// A file whose content is not what was expected (JSON that does not decode, another format, a
/// pickle asking for more than tensors): which file (or which attribute of it), and what is wrong.
public struct FileContentError: Error, CustomStringConvertible, Equatable {
    /// The file (or a file's attribute).
    public let source: String
    /// What is wrong, with where (`at layers.3.r: expected Int, found a string`).
    public let detail: String

    /// An error about `source` (a path, or `PATH (attribute NAME)`) with what is wrong in `detail`.
    public init(source: String, detail: String) {
        self.source = source
        self.detail = detail
    }

    /// `SOURCE: DETAIL`.
    public var description: String { "\(source): \(detail)" }
}

/// Decodes `type` from the JSON `data` read from `source`, so that any error names the
/// source and the key path instead of dumping Foundation's `DecodingError`.
public func decodeJSON<Value: Decodable>(_ type: Value.Type, from data: Data, source: String) throws -> Value {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch let error as DecodingError {
        throw FileContentError(source: source, detail: describe(error))
    } catch {
        throw FileContentError(source: source, detail: "\(error)")
    }
}

/// Decodes `type` from the JSON file at `path`.
public func decodeJSON<Value: Decodable>(_ type: Value.Type, fromFile path: String) throws -> Value {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw FileContentError(source: path, detail: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
    }
    return try decodeJSON(type, from: data, source: path)
}

/// A `DecodingError` as "at KEY.PATH: what went wrong".
func describe(_ error: DecodingError) -> String {
    let (path, detail): ([any CodingKey], String) = switch error {
    case .keyNotFound(let key, let context): (context.codingPath + [key], "missing key")
    case .typeMismatch(let type, let context): (context.codingPath, "expected \(type): \(context.debugDescription)")
    case .valueNotFound(_, let context), .dataCorrupted(let context):
        (context.codingPath, context.underlyingError.map { "\(context.debugDescription) (\(($0 as NSError).localizedDescription))" }
            ?? context.debugDescription)
    @unknown default: ([], "\(error)")
    }
    let location = path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    return location.isEmpty ? detail : "at \(location): \(detail)"
}
