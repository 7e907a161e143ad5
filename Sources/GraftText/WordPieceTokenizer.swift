import Foundation
import GraftFiles

/// BERT's WordPiece tokenizer, reproducing Hugging Face `tokenizers`
/// (`BertNormalizer`, `BertPreTokenizer`, `WordPiece`, `[CLS] … [SEP]`) id for id.
///
/// `encode` runs this pipeline on the text's Unicode scalars:
/// 1. Special tokens (`[CLS]`, `[MASK]`, …) written in the text are matched
///    verbatim, leftmost-longest, before anything else, and become their ids
///    (Hugging Face's added tokens). The text between them goes through 2-5.
/// 2. Normalisation, in this order: clean text (drop U+0000, U+FFFD and the
///    control, format and private-use characters other than tab, newline and
///    carriage return; every whitespace character becomes a space); spaces
///    around CJK ideographs; accent stripping (NFD, then drop non-spacing
///    marks); lower-casing (each scalar's full lower-case mapping, so `Σ` is
///    always `σ` and `İ` becomes `i` + U+0307).
/// 3. Pre-tokenisation: split at whitespace, and make every punctuation
///    character (ASCII symbols and the Unicode `P*` categories) a word of its own.
/// 4. WordPiece on each word: greedy longest match first, with pieces after the
///    first prefixed by `##`; a word with no complete split, or longer than
///    ``maxInputCharactersPerWord`` scalars, becomes one `[UNK]`.
/// 5. `[CLS]` + content + `[SEP]`; `maxLength` keeps the first `maxLength - 2`
///    content ids and still ends with `[SEP]`.
///
/// As in `tokenizers`, whose general-category tables (from the `unicode_categories`
/// crate) are those of Unicode 8.0, the control, punctuation and non-spacing-mark
/// tests only see characters assigned by Unicode 8.0: a later punctuation mark
/// stays inside its word, a later mark survives accent stripping. Vocabulary
/// entries match byte for byte (no canonical equivalence).
public struct WordPieceTokenizer: Tokenizer {
    /// The id of `[CLS]`, which starts every encoding.
    public let classID: Int
    /// The id of `[SEP]`, which ends every encoding.
    public let separatorID: Int
    /// The id of `[MASK]`.
    public let maskID: Int
    /// `[CLS]`, `[SEP]` and `[PAD]`.
    public var specialIDs: Set<Int> { [classID, separatorID, padID] }
    /// The id of `[PAD]`, used to pad batches.
    public let padID: Int
    /// The id of `[UNK]`, produced for words the vocabulary cannot spell.
    public let unknownID: Int
    /// The number of vocabulary entries.
    public let vocabularySize: Int
    /// Whether text is lower-cased.
    public let lowercase: Bool
    /// Whether accents are stripped (NFD, then non-spacing marks dropped).
    public let stripAccents: Bool
    /// Whether CJK ideographs become words of their own.
    public let handleChineseCharacters: Bool
    /// Whether control characters are dropped and whitespace becomes spaces.
    public let cleanText: Bool
    /// Longer words (in Unicode scalars, after normalisation) become `[UNK]`.
    public let maxInputCharactersPerWord: Int

    /// Ids by the UTF-8 bytes of their entry; the last of equal entries wins.
    private let ids: [[UInt8]: Int]
    private let continuationPrefix: [UInt8]
    /// Tokens matched verbatim in the raw text, longest first.
    private let specialTokens: [SpecialToken]

    private struct SpecialToken: Sendable {
        let scalars: [Unicode.Scalar]
        let id: Int
    }

    /// Everything needed to rebuild this tokenizer (stored in backbone files).
    public let specification: Specification

    /// A serialisable WordPiece definition: the arguments of `init`.
    public struct Specification: Codable, Sendable, Equatable {
        /// The entries in id order (`vocab.txt`'s lines).
        public var vocabulary: [String]
        /// The special entries (`[UNK]`, `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]` for BERT).
        public var unknownToken: String, classToken: String, separatorToken: String, padToken: String, maskToken: String
        /// The entries matched verbatim in the raw text before normalisation.
        public var specialTokens: [String]
        /// The prefix of pieces that continue a word (`##`).
        public var continuingSubwordPrefix: String
        /// Longer words (in Unicode scalars, after normalisation) become the unknown token.
        public var maxInputCharactersPerWord: Int
        /// Whether to lower-case, strip accents (a `nil` of `init` already resolved to `lowercase`),
        /// split around CJK ideographs, and drop control characters.
        public var lowercase: Bool, stripAccents: Bool, handleChineseCharacters: Bool, cleanText: Bool
    }

    /// Rebuilds a tokenizer from its specification.
    public init(_ s: Specification) throws {
        try self.init(vocabulary: s.vocabulary, unknownToken: s.unknownToken, classToken: s.classToken,
                      separatorToken: s.separatorToken, padToken: s.padToken, maskToken: s.maskToken, specialTokens: s.specialTokens,
                      continuingSubwordPrefix: s.continuingSubwordPrefix, maxInputCharactersPerWord: s.maxInputCharactersPerWord,
                      lowercase: s.lowercase, stripAccents: s.stripAccents, handleChineseCharacters: s.handleChineseCharacters,
                      cleanText: s.cleanText)
    }

    /// Creates a tokenizer from a WordPiece vocabulary.
    ///
    /// - Parameters:
    ///   - vocabulary: the entries in id order (`vocab.txt`'s lines). If two entries
    ///     are equal, the later id is the one produced, as in Hugging Face.
    ///   - unknownToken, classToken, separatorToken, padToken: the special entries.
    ///   - specialTokens: entries matched verbatim in the raw text before
    ///     normalisation; BERT's five special tokens by default.
    ///   - continuingSubwordPrefix: the prefix of pieces that continue a word.
    ///   - maxInputCharactersPerWord: longer words become the unknown token.
    ///   - lowercase: whether to lower-case the text.
    ///   - stripAccents: whether to strip accents; `nil` follows `lowercase`.
    ///   - handleChineseCharacters: whether to split around CJK ideographs.
    ///   - cleanText: whether to drop control characters and turn whitespace into spaces.
    /// - Throws: ``TokenizerError/emptyVocabulary``, or ``TokenizerError/missingPiece(_:)``
    ///   if a special token is not in the vocabulary.
    public init(
        vocabulary: [String], unknownToken: String = "[UNK]", classToken: String = "[CLS]",
        separatorToken: String = "[SEP]", padToken: String = "[PAD]", maskToken: String = "[MASK]",
        specialTokens: [String] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        continuingSubwordPrefix: String = "##", maxInputCharactersPerWord: Int = 100,
        lowercase: Bool = true, stripAccents: Bool? = nil, handleChineseCharacters: Bool = true,
        cleanText: Bool = true
    ) throws {
        guard !vocabulary.isEmpty else { throw TokenizerError.emptyVocabulary }
        specification = Specification(
            vocabulary: vocabulary, unknownToken: unknownToken, classToken: classToken, separatorToken: separatorToken,
            padToken: padToken, maskToken: maskToken, specialTokens: specialTokens, continuingSubwordPrefix: continuingSubwordPrefix,
            maxInputCharactersPerWord: maxInputCharactersPerWord, lowercase: lowercase,
            stripAccents: stripAccents ?? lowercase, handleChineseCharacters: handleChineseCharacters, cleanText: cleanText)
        var ids: [[UInt8]: Int] = [:]
        ids.reserveCapacity(vocabulary.count)
        for (id, entry) in vocabulary.enumerated() { ids[Array(entry.utf8)] = id }
        func id(of token: String) throws -> Int {
            guard let id = ids[Array(token.utf8)] else { throw TokenizerError.missingPiece(token) }
            return id
        }
        self.unknownID = try id(of: unknownToken)
        self.classID = try id(of: classToken)
        self.separatorID = try id(of: separatorToken)
        self.maskID = try id(of: maskToken)
        self.padID = try id(of: padToken)
        self.specialTokens = try specialTokens.filter { !$0.isEmpty }
            .map { SpecialToken(scalars: Array($0.unicodeScalars), id: try id(of: $0)) }
            .sorted { $0.scalars.count > $1.scalars.count }
        self.ids = ids
        self.vocabularySize = vocabulary.count
        self.continuationPrefix = Array(continuingSubwordPrefix.utf8)
        self.maxInputCharactersPerWord = maxInputCharactersPerWord
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.handleChineseCharacters = handleChineseCharacters
        self.cleanText = cleanText
    }

    /// The ids of `text`: `[CLS]`, the content pieces, `[SEP]`.
    ///
    /// - Parameter maxLength: if given, at most this many ids are returned: the
    ///   first `maxLength - 2` content ids between `[CLS]` and `[SEP]`. Values
    ///   below 2 count as 2 (the special tokens are always present).
    public func encode(_ text: String, maxLength: Int?) -> [Int] {
        var content = contentIDs(of: Array(text.unicodeScalars))
        if let maxLength {
            let keep = max(maxLength, 2) - 2
            if content.count > keep { content.removeSubrange(keep...) }
        }
        return [classID] + content + [separatorID]
    }

    /// Steps 1-4 of the pipeline: the ids of the text, without `[CLS]` and `[SEP]`.
    private func contentIDs(of text: [Unicode.Scalar]) -> [Int] {
        var ids: [Int] = []
        var segmentStart = 0
        var i = 0
        while i < text.count {
            if let special = specialTokens.first(where: { text[i...].starts(with: $0.scalars) }) {
                appendWordPieces(of: text[segmentStart..<i], to: &ids)
                ids.append(special.id)
                i += special.scalars.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        appendWordPieces(of: text[segmentStart...], to: &ids)
        return ids
    }

    /// Normalises, pre-tokenises and splits `segment` (text without special tokens).
    private func appendWordPieces(of segment: ArraySlice<Unicode.Scalar>, to ids: inout [Int]) {
        var word: [Unicode.Scalar] = []
        for scalar in normalized(segment) {
            if scalar.properties.isWhitespace || Self.isPunctuation(scalar) {
                if !word.isEmpty { appendPieces(of: word, to: &ids) }
                word.removeAll(keepingCapacity: true)
                if !scalar.properties.isWhitespace { appendPieces(of: [scalar], to: &ids) }
            } else {
                word.append(scalar)
            }
        }
        if !word.isEmpty { appendPieces(of: word, to: &ids) }
    }

    /// `BertNormalizer`: clean text, CJK spacing, accent stripping, lower-casing.
    private func normalized(_ segment: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(segment.count)
        for scalar in segment {
            if cleanText {
                if scalar == "\0" || scalar == "\u{FFFD}" || Self.isControl(scalar) { continue }
                if Self.isWhitespace(scalar) {
                    scalars.append(" ")
                    continue
                }
            }
            if handleChineseCharacters && Self.isCJKIdeograph(scalar) {
                scalars += [" ", scalar, " "]
            } else {
                scalars.append(scalar)
            }
        }
        if stripAccents {
            let decomposed = String(String.UnicodeScalarView(scalars)).decomposedStringWithCanonicalMapping
            scalars = decomposed.unicodeScalars.filter { !Self.isNonspacingMark($0) }
        }
        if lowercase {
            scalars = scalars.flatMap { $0.properties.lowercaseMapping.unicodeScalars }
        }
        return scalars
    }

    /// WordPiece on one word: greedy longest-match-first, or a single `[UNK]`.
    private func appendPieces(of word: [Unicode.Scalar], to ids: inout [Int]) {
        guard word.count <= maxInputCharactersPerWord else {
            ids.append(unknownID)
            return
        }
        var bytes: [UInt8] = []
        var boundaries = [0]  // byte offset where each scalar starts, then the end
        for scalar in word {
            Unicode.UTF8.encode(scalar) { bytes.append($0) }
            boundaries.append(bytes.count)
        }
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var piece: Int?
            while end > start && piece == nil {
                let key = (start > 0 ? continuationPrefix : []) + bytes[boundaries[start]..<boundaries[end]]
                piece = self.ids[key]
                if piece == nil { end -= 1 }
            }
            guard let piece else {
                ids.append(unknownID)
                return
            }
            pieces.append(piece)
            start = end
        }
        ids += pieces
    }

    // MARK: - Character classes, as the `tokenizers` crate defines them

    /// Whether `scalar` was assigned by Unicode 8.0, the version of the tables
    /// `tokenizers` takes its general categories from.
    private static func assignedByUnicode8(_ scalar: Unicode.Scalar) -> Bool {
        guard let age = scalar.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }

    /// Tab, newline, carriage return, and Unicode `White_Space`.
    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar.properties.isWhitespace
    }

    /// Control, format and private-use characters, except tab, newline and carriage return.
    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar != "\t", scalar != "\n", scalar != "\r", assignedByUnicode8(scalar) else { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .privateUse, .surrogate: return true
        default: return false
        }
    }

    /// ASCII symbols (`!`-`/`, `:`-`@`, `[`-`` ` ``, `{`-`~`) and the Unicode `P*` categories.
    private static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        case 0...0x7F: return false
        default: break
        }
        guard assignedByUnicode8(scalar) else { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    private static func isNonspacingMark(_ scalar: Unicode.Scalar) -> Bool {
        assignedByUnicode8(scalar) && scalar.properties.generalCategory == .nonspacingMark
    }

    /// The CJK ideograph blocks `tokenizers` puts spaces around.
    private static func isCJKIdeograph(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F,
             0x2B740...0x2B81F, 0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}

// MARK: - Loading

extension WordPieceTokenizer {
    /// Loads a Hugging Face `tokenizer.json` with a `WordPiece` model, a
    /// `BertNormalizer` (or none), a `BertPreTokenizer` and a `TemplateProcessing`
    /// or `BertProcessing` post-processor.
    ///
    /// The vocabulary, normaliser flags, unknown token, `##` prefix, word-length
    /// limit, `[CLS]`/`[SEP]`, pad token and added tokens are read; the file's
    /// truncation and padding settings are not (callers pass `maxLength`). Added
    /// tokens are matched verbatim in the raw text whatever their
    /// `lstrip`/`rstrip`/`single_word`/`normalized` flags.
    /// - Throws: ``TokenizerError/fileNotFound(path:)``, or
    ///   ``TokenizerError/invalidFile(path:reason:)`` naming what was expected and found.
    public static func load(tokenizerJSON path: String) throws -> WordPieceTokenizer {
        let file: TokenizerFile
        do {
            file = try decodeJSON(TokenizerFile.self, from: try contents(of: path), source: path)
        } catch let error as FileContentError {
            throw TokenizerError.invalidFile(path: path, reason: error.detail)
        }
        func invalid(_ reason: String) -> TokenizerError { .invalidFile(path: path, reason: reason) }

        guard file.model.type == nil || file.model.type == "WordPiece" else {
            throw invalid("expected a WordPiece model, found \(file.model.type ?? "")")
        }
        var entries = [String?](repeating: nil, count: file.model.vocab.count)
        for (token, id) in file.model.vocab {
            guard entries.indices.contains(id), entries[id] == nil else {
                throw invalid("""
                    model.vocab ids must be 0..<\(entries.count), each once; found id \(id) for '\(token)' \
                    (canonically equivalent entries, such as NFC and NFD spellings, cannot be told apart)
                    """)
            }
            entries[id] = token
        }
        let normalizer = file.normalizer ?? .init(type: "BertNormalizer", cleanText: false, handleChineseChars: false,
                                                  stripAccents: false, lowercase: false)
        guard normalizer.type == "BertNormalizer" else {
            throw invalid("expected a BertNormalizer normalizer, found \(normalizer.type)")
        }
        guard file.preTokenizer?.type == "BertPreTokenizer" else {
            throw invalid("expected a BertPreTokenizer pre_tokenizer, found \(file.preTokenizer?.type ?? "none")")
        }
        guard case let (classToken, separatorToken)? = file.postProcessor?.classAndSeparator else {
            throw invalid("""
                expected a post_processor adding [CLS] … [SEP] (TemplateProcessing or BertProcessing), \
                found \(file.postProcessor?.type ?? "none")
                """)
        }
        let tokenizer: WordPieceTokenizer
        do {
            tokenizer = try WordPieceTokenizer(
                vocabulary: entries.compactMap { $0 }, unknownToken: file.model.unkToken ?? "[UNK]", classToken: classToken,
                separatorToken: separatorToken, padToken: file.padding?.padToken ?? "[PAD]",
                specialTokens: file.addedTokens?.map(\.content) ?? [],
                continuingSubwordPrefix: file.model.continuingSubwordPrefix ?? "##",
                maxInputCharactersPerWord: file.model.maxInputCharsPerWord ?? 100,
                lowercase: normalizer.lowercase ?? true, stripAccents: normalizer.stripAccents,
                handleChineseCharacters: normalizer.handleChineseChars ?? true, cleanText: normalizer.cleanText ?? true)
        } catch let error as TokenizerError {
            throw invalid(error.description)
        }
        for token in file.addedTokens ?? [] {
            let id = tokenizer.ids[Array(token.content.utf8)]
            guard id == token.id else {
                throw invalid("added token '\(token.content)' has id \(token.id); expected its vocabulary id \(id.map(String.init) ?? "none")")
            }
        }
        return tokenizer
    }

    /// Loads a BERT `vocab.txt` (one entry per line, in id order) with BERT's
    /// defaults: `[UNK]`, `[CLS]`, `[SEP]`, `[PAD]`, `[MASK]`, `##`, 100 scalars
    /// per word, CJK splitting, and accent stripping exactly when lower-casing.
    ///
    /// Lines end at `\n`, `\r\n` or `\r`, as Python's text mode reads them.
    /// - Throws: ``TokenizerError/fileNotFound(path:)``, or
    ///   ``TokenizerError/invalidFile(path:reason:)`` if the file is not UTF-8 or
    ///   lacks a special token.
    public static func load(vocabularyFile path: String, lowercase: Bool) throws -> WordPieceTokenizer {
        let bytes = [UInt8](try contents(of: path))
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\n") || bytes[i] == UInt8(ascii: "\r") {
                guard let line = String(validating: bytes[start..<i], as: UTF8.self) else {
                    throw TokenizerError.invalidFile(path: path, reason: "line \(lines.count + 1) is not valid UTF-8")
                }
                lines.append(line)
                if bytes[i] == UInt8(ascii: "\r") && i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\n") { i += 1 }
                start = i + 1
            }
            i += 1
        }
        if start < bytes.count {
            guard let line = String(validating: bytes[start...], as: UTF8.self) else {
                throw TokenizerError.invalidFile(path: path, reason: "line \(lines.count + 1) is not valid UTF-8")
            }
            lines.append(line)
        }
        do {
            return try WordPieceTokenizer(vocabulary: lines, lowercase: lowercase)
        } catch let error as TokenizerError {
            throw TokenizerError.invalidFile(path: path, reason: error.description)
        }
    }

    private static func contents(of path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw TokenizerError.fileNotFound(path: path) }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.invalidFile(path: path, reason: "cannot read it: \(error.localizedDescription)")
        }
    }

    /// "at model.vocab: expected …" from a decoding error.
}

/// The parts of a `tokenizer.json` a WordPiece tokenizer uses.
private struct TokenizerFile: Decodable {
    struct Model: Decodable {
        let type: String?
        let vocab: [String: Int]
        let unkToken: String?
        let continuingSubwordPrefix: String?
        let maxInputCharsPerWord: Int?
    }
    struct Normalizer: Decodable {
        let type: String
        let cleanText: Bool?
        let handleChineseChars: Bool?
        let stripAccents: Bool?
        let lowercase: Bool?
    }
    struct PreTokenizer: Decodable {
        let type: String
    }
    struct AddedToken: Decodable {
        let id: Int
        let content: String
    }
    struct Padding: Decodable {
        let padToken: String?
    }
    /// `TemplateProcessing` (`single: [{SpecialToken}, {Sequence}, {SpecialToken}]`)
    /// or `BertProcessing` (`cls: [token, id]`, `sep: [token, id]`).
    struct PostProcessor: Decodable {
        struct Piece: Decodable {
            struct Reference: Decodable { let id: String }
            let specialToken: Reference?
            let sequence: Reference?
            enum CodingKeys: String, CodingKey { case specialToken = "SpecialToken", sequence = "Sequence" }
        }
        /// `[token, id]`; only the token is used.
        struct TokenAndID: Decodable {
            let token: String
            init(from decoder: any Decoder) throws {
                var container = try decoder.unkeyedContainer()
                token = try container.decode(String.self)
            }
        }
        let type: String
        let single: [Piece]?
        let cls: TokenAndID?
        let sep: TokenAndID?

        /// The tokens put before and after the text, if this is one of the two supported forms.
        var classAndSeparator: (String, String)? {
            switch type {
            case "BertProcessing":
                guard let cls, let sep else { return nil }
                return (cls.token, sep.token)
            case "TemplateProcessing":
                guard let single, single.count == 3, let first = single[0].specialToken?.id,
                      single[1].sequence != nil, let last = single[2].specialToken?.id
                else { return nil }
                return (first, last)
            default:
                return nil
            }
        }
    }

    let model: Model
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let postProcessor: PostProcessor?
    let addedTokens: [AddedToken]?
    let padding: Padding?

    enum CodingKeys: String, CodingKey {
        case model, normalizer, padding
        case preTokenizer = "pre_tokenizer", postProcessor = "post_processor", addedTokens = "added_tokens"
    }
}

extension TokenizerFile.Model {
    enum CodingKeys: String, CodingKey {
        case type, vocab
        case unkToken = "unk_token", continuingSubwordPrefix = "continuing_subword_prefix"
        case maxInputCharsPerWord = "max_input_chars_per_word"
    }
}

extension TokenizerFile.Normalizer {
    enum CodingKeys: String, CodingKey {
        case type, lowercase
        case cleanText = "clean_text", handleChineseChars = "handle_chinese_chars", stripAccents = "strip_accents"
    }
}

extension TokenizerFile.Padding {
    enum CodingKeys: String, CodingKey { case padToken = "pad_token" }
}
