import Foundation
import GraftFiles

/// A record that writes itself as one line of a JSON Lines file, fields in a fixed order.
public protocol JSONLineRepresentable {
    /// One JSON object, without the trailing newline.
    var jsonLine: String { get }
}

/// JSON Lines files: UTF-8, one JSON object per `\n`-terminated line (a `\r`
/// before the `\n` is tolerated), no blank lines.
public enum JSONLines {
    /// The records of the file at `path`, in file order.
    /// - Throws: ``DataError/missingFile(path:)``; ``DataError/malformedLine(path:line:reason:)``
    ///   naming the first line that is not a valid `Record`; ``DataError/emptyDataset(path:)``.
    public static func read<Record: Decodable>(_ type: Record.Type, from path: String) throws -> [Record] {
        try readNumbered(type, from: path).map(\.record)
    }

    /// Writes one line per record to `path` atomically (a temporary file in the
    /// same directory, renamed over `path`), creating the directory if needed.
    public static func write<Record: JSONLineRepresentable>(_ records: [Record], to path: String) throws {
        var text = ""
        for record in records {
            text += record.jsonLine
            text += "\n"
        }
        try writeAtomically(Data(text.utf8), to: path)
    }

    /// The records of `path` with their 1-based line numbers.
    static func readNumbered<Record: Decodable>(_ type: Record.Type, from path: String) throws -> [(line: Int, record: Record)] {
        var lines = try contents(of: path).split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        let decoder = JSONDecoder()
        var records: [(line: Int, record: Record)] = []
        records.reserveCapacity(lines.count)
        for (index, line) in lines.enumerated() {
            let bytes = line.last == 0x0D ? line.dropLast() : line
            guard bytes.contains(where: { ![0x20, 0x09].contains($0) }) else {
                throw DataError.malformedLine(path: path, line: index + 1, reason: "expected a JSON object, found an empty line")
            }
            do {
                records.append((index + 1, try decoder.decode(Record.self, from: Data(bytes))))
            } catch let error as DecodingError {
                throw DataError.malformedLine(path: path, line: index + 1, reason: describe(error))
            }
        }
        guard !records.isEmpty else { throw DataError.emptyDataset(path: path) }
        return records
    }

    /// A `DecodingError` as "field: expected ..., found ...".
    private static func describe(_ error: DecodingError) -> String {
        func field(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = field(context)
            return "missing field \"\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)\""
        case .valueNotFound(let type, let context):
            return "field \"\(field(context))\": expected \(type), found null"
        case .typeMismatch(_, let context), .dataCorrupted(let context):
            let location = field(context)
            return location.isEmpty
                ? "expected a JSON object, found invalid JSON (\(context.debugDescription))"
                : "field \"\(location)\": \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

extension Verse: JSONLineRepresentable {
    /// `{"book":1,"chapter":1,"verse":1,"text":"..."}`.
    public var jsonLine: String {
        #"{"book":\#(book),"chapter":\#(chapter),"verse":\#(verse),"text":\#(jsonString(text))}"#
    }
}

/// One text as token ids, with its class (absent for corpora) and split: a line
/// `{"ids":[0,1234,2],"label":"law","split":"train"}` of `adapt data tokenize`'s output.
public struct TokenizedText: Codable, Equatable, Sendable, JSONLineRepresentable {
    /// The token ids, with the tokenizer's special tokens.
    public var ids: [Int]
    /// The text's class; nil for corpus texts.
    public var label: String?
    /// The split the text belongs to (corpus texts: train, or dev for held-out ones).
    public var split: DataSplit

    /// A record of `ids` with class `label` (nil for corpus texts) in `split`.
    public init(ids: [Int], label: String?, split: DataSplit) {
        (self.ids, self.label, self.split) = (ids, label, split)
    }

    /// `{"ids":[0,1234,2],"label":"law","split":"train"}`; `label` is left out when nil.
    public var jsonLine: String {
        let label = self.label.map { #""label":\#(jsonString($0)),"# } ?? ""
        return #"{"ids":[\#(ids.map(String.init).joined(separator: ","))],\#(label)"split":"\#(split.rawValue)"}"#
    }
}

extension LabelledText: JSONLineRepresentable {
    /// `{"text":"...","label":"law","split":"train","book":1,"chapter":1,"verse":1}`;
    /// absent locations are left out.
    public var jsonLine: String {
        var line = #"{"text":\#(jsonString(text)),"label":\#(jsonString(label)),"split":"\#(split.rawValue)""#
        for (key, value) in [("book", book), ("chapter", chapter), ("verse", verse)] {
            if let value { line += #","\#(key)":\#(value)"# }
        }
        return line + "}"
    }

    /// The examples of the JSONL file at `path`, one per line, in the file's order.
    /// - Parameter labels: the dataset's label set; nil accepts any label.
    /// - Throws: what ``JSONLines/read(_:from:)`` throws, and
    ///   ``DataError/unknownLabel(path:line:label:expected:)`` for a label outside `labels`.
    public static func read(from path: String, labels: [String]? = nil) throws -> [LabelledText] {
        let records = try JSONLines.readNumbered(LabelledText.self, from: path)
        if let labels {
            let known = Set(labels)
            if let bad = records.first(where: { !known.contains($0.record.label) }) {
                throw DataError.unknownLabel(path: path, line: bad.line, label: bad.record.label, expected: labels)
            }
        }
        return records.map(\.record)
    }
}

/// `text` as a JSON string literal: quotes, backslashes and control characters
/// escaped, everything else (including non-ASCII) written as UTF-8.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20:
            let hex = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// The bytes of the file at `path`.
/// - Throws: ``DataError/missingFile(path:)`` if there is none.
func contents(of path: String) throws -> Data {
    guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingFile(path: path) }
    return try Data(contentsOf: URL(fileURLWithPath: path))
}
