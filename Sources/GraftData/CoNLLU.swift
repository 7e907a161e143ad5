import Foundation
import GraftFiles
import GraftTensor

/// One word of a CoNLL-U sentence, as a POS-tagging example sees it.
public struct CoNLLUToken: Equatable, Sendable {
    /// The word form (column 2).
    public var form: String
    /// The universal part-of-speech tag (column 4).
    public var upos: String
    /// False where column 10 (MISC) says `SpaceAfter=No`.
    public var spaceAfter: Bool

    /// A word; `spaceAfter` false for `SpaceAfter=No`.
    public init(form: String, upos: String, spaceAfter: Bool = true) {
        self.form = form
        self.upos = upos
        self.spaceAfter = spaceAfter
    }
}

/// One CoNLL-U sentence: its comment lines and its words.
public struct CoNLLUSentence: Equatable, Sendable {
    /// The comment lines without the leading `#` and the space after it, such
    /// as `sent_id = tr-forum:00000222:S023`.
    public var comments: [String]
    /// The words, in order; multi-word token ranges and empty nodes are not words.
    public var tokens: [CoNLLUToken]

    /// A sentence with its comment lines (without `# `) and words.
    public init(comments: [String] = [], tokens: [CoNLLUToken]) {
        self.comments = comments
        self.tokens = tokens
    }

    /// The value of a `key = value` comment, or nil if there is none.
    public func metadata(_ key: String) -> String? {
        let prefix = key + " = "
        return comments.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// The split named by the `split = train|dev|test` comment of a prepared file.
    public var split: DataSplit? { metadata("split").flatMap(DataSplit.init(rawValue:)) }
}

/// CoNLL-U (Universal Dependencies) reading and writing, for part-of-speech tagging.
///
/// Reading keeps the word form, UPOS and `SpaceAfter=No` of each word line (an
/// integer ID); it skips multi-word token lines (ID `1-2`) and empty nodes
/// (ID `1.1`), keeps `#` comment lines, and ends a sentence at a blank line or
/// at the end of the file. Writing produces the same structure with only ID,
/// FORM, UPOS and MISC filled in (other columns `_`).
public enum CoNLLU {
    /// The sentences of the file at `path`.
    /// - Throws: ``DataError/missingFile(path:)``, ``DataError/malformedLine(path:line:reason:)``,
    ///   ``DataError/emptyDataset(path:)``.
    public static func read(from path: String) throws -> [CoNLLUSentence] {
        guard let text = String(data: try contents(of: path), encoding: .utf8) else {
            throw DataError.unexpectedContent(path: path, reason: "expected UTF-8 text, found invalid bytes")
        }
        return try parse(text, path: path)
    }

    /// The sentences of CoNLL-U `text`; `path` names it in errors.
    public static func parse(_ text: String, path: String) throws -> [CoNLLUSentence] {
        var sentences: [CoNLLUSentence] = []
        var comments: [String] = []
        var tokens: [CoNLLUToken] = []
        var start = 1
        func finish(at line: Int) throws {
            if tokens.isEmpty, !comments.isEmpty {
                throw DataError.malformedLine(path: path, line: start, reason: "expected word lines after the comments, found none")
            }
            if !tokens.isEmpty { sentences.append(CoNLLUSentence(comments: comments, tokens: tokens)) }
            comments = []
            tokens = []
            start = line + 1
        }
        var number = 0
        // "\r\n" is a single Character, so it needs its own test.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                try finish(at: number)
            } else if line.first == "#" {
                comments.append(String(line.dropFirst().drop(while: { $0 == " " })))
            } else {
                let columns = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard columns.count == 10 else {
                    throw DataError.malformedLine(path: path, line: number,
                                                  reason: "expected 10 tab-separated columns, found \(columns.count)")
                }
                let id = columns[0]
                if id.contains("-") || id.contains(".") { continue }
                guard Int(id) == tokens.count + 1 else {
                    throw DataError.malformedLine(path: path, line: number,
                                                  reason: "expected word id \(tokens.count + 1), found \"\(id)\"")
                }
                let spaceAfter = !columns[9].split(separator: "|").contains("SpaceAfter=No")
                tokens.append(CoNLLUToken(form: String(columns[1]), upos: String(columns[3]), spaceAfter: spaceAfter))
            }
        }
        try finish(at: number)
        guard !sentences.isEmpty else { throw DataError.emptyDataset(path: path) }
        return sentences
    }

    /// The sentences as CoNLL-U text: comments as `# ...`, one line per word
    /// (`ID FORM _ UPOS _ _ _ _ _ MISC`), a blank line after each sentence.
    public static func format(_ sentences: [CoNLLUSentence]) -> String {
        var text = ""
        for sentence in sentences {
            for comment in sentence.comments { text += "# \(comment)\n" }
            for (index, token) in sentence.tokens.enumerated() {
                text += "\(index + 1)\t\(token.form)\t_\t\(token.upos)\t_\t_\t_\t_\t_\t\(token.spaceAfter ? "_" : "SpaceAfter=No")\n"
            }
            text += "\n"
        }
        return text
    }

    /// Writes ``format(_:)`` of `sentences` to `path` atomically (temporary file, then rename).
    public static func write(_ sentences: [CoNLLUSentence], to path: String) throws {
        try writeAtomically(Data(format(sentences).utf8), to: path)
    }

    /// Splits sentences 80/10/10 by ``DataSplit/assign(count:using:)``: each
    /// group (for example each source file) in turn, with one `SplitMix64(seed:)`
    /// generator, so that every group is represented in every split.
    public static func splits(groupSizes: [Int], seed: UInt64 = DataSplit.defaultSeed) -> [[DataSplit]] {
        var generator = SplitMix64(seed: seed)
        return groupSizes.map { DataSplit.assign(count: $0, using: &generator) }
    }
}
