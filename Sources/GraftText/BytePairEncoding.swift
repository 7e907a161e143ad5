/// A `tokenizer.json` BPE model over byte-level words (RoBERTa, GPT-2): each word's
/// symbols are merged pair by pair, the lowest-ranked merge first (leftmost on ties).
struct BytePairModel: Sendable {
    let ids: [String: Int]
    let count: Int
    let unknownID: Int?
    private let merges: [Pair: (rank: Int, merged: Int)]
    private let ignoresMerges: Bool

    private struct Pair: Hashable {
        let left: Int, right: Int
    }

    init(_ node: JSONNode) throws {
        for key in ["continuing_subword_prefix", "end_of_word_suffix", "dropout"] where try node.optional(key) != nil {
            if key != "dropout", try node.string(key).isEmpty { continue }
            throw node.invalid("BPE with \(key) is not implemented (Graft reads byte-level BPE as RoBERTa and GPT-2 ship it)")
        }
        if try node.optional("byte_fallback")?.bool() == true { throw node.invalid("BPE with byte_fallback is not implemented") }
        var ids: [String: Int] = [:]
        for (token, id) in try node.child("vocab").members() { ids[token] = try id.integer() }
        self.ids = ids
        count = (ids.values.max() ?? -1) + 1
        var merges: [Pair: (rank: Int, merged: Int)] = [:]
        for (rank, entry) in try node.child("merges").array().enumerated() {
            let parts: [String]
            if let line = entry.value as? String {
                parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            } else {
                parts = try entry.array().map { try $0.string() }
            }
            guard parts.count == 2, let left = ids[parts[0]], let right = ids[parts[1]], let merged = ids[parts[0] + parts[1]] else {
                throw entry.invalid("a merge must join two vocabulary tokens into a vocabulary token")
            }
            if merges[Pair(left: left, right: right)] == nil { merges[Pair(left: left, right: right)] = (rank, merged) }
        }
        self.merges = merges
        unknownID = try node.optional("unk_token").map { token in
            guard let id = ids[try token.string()] else { throw token.invalid("unk_token is not in the vocabulary") }
            return id
        }
        ignoresMerges = try node.optional("ignore_merges")?.bool() ?? false
    }

    func ids(of word: String) -> [Int] {
        if ignoresMerges, let id = ids[word] { return [id] }
        var symbols = word.unicodeScalars.compactMap { ids[String($0)] ?? unknownID }
        while symbols.count > 1 {
            var best: (rank: Int, index: Int, merged: Int)?
            for index in 0..<(symbols.count - 1) {
                if let merge = merges[Pair(left: symbols[index], right: symbols[index + 1])], merge.rank < best?.rank ?? .max {
                    best = (merge.rank, index, merge.merged)
                }
            }
            guard let best else { break }
            symbols[best.index] = best.merged
            symbols.remove(at: best.index + 1)
        }
        return symbols
    }
}

/// GPT-2's byte-level alphabet and word splitting, as `tokenizers`' ByteLevel pre-tokenizer applies them.
enum ByteLevelAlphabet {
    /// The printable character standing for each byte: printable Latin-1 bytes stand for
    /// themselves, the other 68 for U+0100, U+0101, ... in byte order.
    static let characters: [Character] = {
        var shifted = 0
        return (0..<256).map { byte in
            if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
                return Character(Unicode.Scalar(UInt8(byte)))
            }
            shifted += 1
            return Character(Unicode.Scalar(UInt32(255 + shifted))!)
        }
    }()

    /// `word`'s UTF-8 bytes spelt in the byte-level alphabet.
    static func spell(_ word: String) -> String { String(word.utf8.map { characters[Int($0)] }) }

    /// `text` cut as GPT-2's pattern cuts it:
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    static func gpt2Words(_ text: String) -> [String] {
        enum Kind: Equatable { case letter, number, other, space }
        func kind(_ scalar: Unicode.Scalar) -> Kind {
            if scalar.properties.isWhitespace { return .space }
            switch scalar.properties.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
            case .decimalNumber, .letterNumber, .otherNumber: return .number
            default: return .other
            }
        }
        let scalars = Array(text.unicodeScalars)
        let kinds = scalars.map(kind)
        func run(of wanted: Kind, from start: Int) -> Int {
            var end = start
            while end < scalars.count && kinds[end] == wanted { end += 1 }
            return end
        }
        var words: [String] = []
        var start = 0
        while start < scalars.count {
            var end: Int
            if let contraction = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"].first(where: { suffix in
                scalars[start...].starts(with: suffix.unicodeScalars)
            }) {
                end = start + contraction.unicodeScalars.count
            } else {
                let body = scalars[start] == " " && start + 1 < scalars.count && kinds[start + 1] != .space ? start + 1 : start
                if kinds[body] != .space {
                    end = run(of: kinds[body], from: body)
                } else {
                    end = run(of: .space, from: start)
                    if end < scalars.count && end - start > 1 { end -= 1 }  // leave the last space to the next word
                }
            }
            words.append(String(String.UnicodeScalarView(scalars[start..<end])))
            start = end
        }
        return words
    }
}
