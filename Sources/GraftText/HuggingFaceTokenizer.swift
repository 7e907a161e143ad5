import Foundation

/// The tokenizer a Hugging Face `tokenizer.json` describes: a ``WordPieceTokenizer`` for a
/// WordPiece model, a ``HuggingFaceTokenizer`` for the others.
/// - Throws: ``TokenizerError`` naming the file and what in it cannot be used.
public func loadTokenizer(tokenizerJSON path: String) throws -> any Tokenizer {
    try HuggingFaceTokenizer.reading(tokenizerJSON: path) { root, text in
        if (try? root.child("model").string("type")) == "WordPiece" { return try WordPieceTokenizer.load(tokenizerJSON: path) }
        return try HuggingFaceTokenizer(HuggingFaceTokenizer.Specification(tokenizerJSON: text), root: root)
    }
}

/// A tokenizer defined by a Hugging Face `tokenizer.json` with a SentencePiece-unigram
/// model (XLM-R, multilingual-e5, mBART; byte fallback where the file turns it on) or a
/// byte-level BPE model (RoBERTa, GPT-2), producing the ids Hugging Face `tokenizers` produces.
///
/// `encode` follows the file's pipeline: added tokens that are not normalised are split
/// out of the raw text; each remaining segment is normalised (Precompiled, Strip,
/// Replace, NFC/NFD/NFKC/NFKD, Lowercase, Prepend, in the file's order) and the
/// normalised added tokens are split out of it, honouring `lstrip`, `rstrip` and
/// `single_word`; the pre-tokenizer (Metaspace or ByteLevel) cuts the rest into words;
/// the model turns each word into ids; the post-processor's special tokens frame them.
/// The file's truncation and padding settings are not read: callers pass `maxLength`.
public struct HuggingFaceTokenizer: Tokenizer {
    /// The `tokenizer.json` this tokenizer was read from (stored in backbone files).
    public struct Specification: Codable, Sendable, Equatable {
        /// The file's JSON text.
        public var tokenizerJSON: String

        /// A specification holding the text of a `tokenizer.json` file (not checked until a tokenizer is built).
        public init(tokenizerJSON: String) { self.tokenizerJSON = tokenizerJSON }
    }

    /// The `tokenizer.json` text this tokenizer was built from.
    public let specification: Specification
    /// The padding id: the file's `padding.pad_id`, else the id of `<pad>` or `[PAD]`.
    public let padID: Int
    /// The unknown id: the model's own (`unk_id`, or BPE's `unk_token`), else the id of `<unk>` or `[UNK]`.
    public let unknownID: Int
    /// The id of `<mask>` or `[MASK]`, from `added_tokens` or the vocabulary.
    public let maskID: Int
    /// The model's vocabulary size, or one more than the largest added-token id if that is larger.
    public let vocabularySize: Int
    /// The post-processor's framing ids (e.g. `<s>`, `</s>`) and the padding id.
    public var specialIDs: Set<Int> { Set(prefix + suffix + [padID]) }
    /// The model kind, for messages: "SentencePiece unigram" or "byte-level BPE".
    public var modelDescription: String { model.description }

    private let normalizers: [TextNormalizer]
    private let preTokenizer: PreTokenizer
    private let model: SubwordModel
    private let rawTokens: [AddedToken], normalizedTokens: [AddedToken]
    /// The post-processor's ids before and after a text's ids.
    private let prefix: [Int], suffix: [Int]

    /// Reads a `tokenizer.json` file.
    /// - Throws: ``TokenizerError/fileNotFound(path:)``, or ``TokenizerError/invalidFile(path:reason:)``
    ///   naming the component that is missing, malformed or of a kind Graft does not implement.
    public static func load(tokenizerJSON path: String) throws -> HuggingFaceTokenizer {
        try reading(tokenizerJSON: path) { root, text in try HuggingFaceTokenizer(Specification(tokenizerJSON: text), root: root) }
    }

    /// `body` of the file's parsed JSON and its text, errors naming the file.
    static func reading<Result>(tokenizerJSON path: String, _ body: (JSONNode, String) throws -> Result) throws -> Result {
        guard let data = FileManager.default.contents(atPath: path) else { throw TokenizerError.fileNotFound(path: path) }
        do {
            return try body(try JSONNode(parsing: data), String(decoding: data, as: UTF8.self))
        } catch TokenizerError.invalidSpecification(let reason) {
            throw TokenizerError.invalidFile(path: path, reason: reason)
        }
    }

    /// Builds the tokenizer a `tokenizer.json` text describes.
    /// - Throws: ``TokenizerError/invalidSpecification(_:)`` naming what is missing, malformed or unsupported.
    public init(_ specification: Specification) throws {
        try self.init(specification, root: try JSONNode(parsing: Data(specification.tokenizerJSON.utf8)))
    }

    /// The tokenizer of `specification`, whose JSON is already parsed as `root`.
    init(_ specification: Specification, root: JSONNode) throws {
        self.specification = specification
        let modelNode = try root.child("model")
        switch try modelNode.string("type") {
        case "Unigram": model = try .unigram(UnigramModel(modelNode))
        case "BPE": model = try .bytePair(BytePairModel(modelNode))
        case let other: throw root.invalid("model.type \(other) is not implemented (expected Unigram or BPE; WordPiece files are read by WordPieceTokenizer)")
        }
        normalizers = try root.optional("normalizer").map(TextNormalizer.sequence) ?? []
        preTokenizer = try PreTokenizer(try root.child("pre_tokenizer"))
        let added = try root.optional("added_tokens")?.array().map(AddedToken.init) ?? []
        rawTokens = added.filter { !$0.normalized }
        normalizedTokens = added.filter(\.normalized)
        (prefix, suffix) = try root.optional("post_processor").map(Self.frame) ?? ([], [])

        let model = self.model
        func id(of names: [String], role: String) throws -> Int {
            for name in names {
                if let token = added.first(where: { $0.content.elementsEqual(name.unicodeScalars) }) { return token.id }
                if let id = model.id(of: name) { return id }
            }
            throw TokenizerError.invalidSpecification("no \(role) token (\(names.joined(separator: " or "))) in added_tokens or the vocabulary")
        }
        maskID = try id(of: ["<mask>", "[MASK]"], role: "mask")
        padID = try root.optional("padding")?.optional("pad_id")?.integer() ?? id(of: ["<pad>", "[PAD]"], role: "padding")
        unknownID = try model.unknownID ?? id(of: ["<unk>", "[UNK]"], role: "unknown")
        vocabularySize = max(model.count, (added.map(\.id).max() ?? -1) + 1)
        for (role, value) in [("mask", maskID), ("padding", padID), ("unknown", unknownID)] + (prefix + suffix).map({ ("special", $0) })
        where !(0..<vocabularySize).contains(value) {
            throw TokenizerError.specialIDOutOfRange(name: role, id: value, vocabularySize: vocabularySize)
        }
    }

    /// The post-processor's special ids before and after the text (TemplateProcessing's
    /// `single` template, RobertaProcessing's or BertProcessing's `cls` and `sep`).
    private static func frame(_ node: JSONNode) throws -> ([Int], [Int]) {
        switch try node.string("type") {
        case "TemplateProcessing":
            let specials = try node.child("special_tokens")
            var before: [Int] = [], after: [Int] = [], seenSequence = false
            for item in try node.child("single").array() {
                if let special = try item.optional("SpecialToken") {
                    let ids = try specials.child(try special.string("id")).child("ids").array().map { try $0.integer() }
                    if seenSequence { after += ids } else { before += ids }
                } else if try item.optional("Sequence") != nil {
                    seenSequence = true
                }
            }
            return (before, after)
        case "RobertaProcessing", "BertProcessing":
            func id(_ key: String) throws -> Int {
                let pair = try node.child(key).array()
                guard pair.count == 2 else { throw node.invalid("\(key) must be [token, id]") }
                return try pair[1].integer()
            }
            return ([try id("cls")], [try id("sep")])
        case "ByteLevel":
            return ([], [])
        case let other:
            throw node.invalid("post_processor type \(other) is not implemented (expected TemplateProcessing, RobertaProcessing or BertProcessing)")
        }
    }

    /// The ids of `text` framed by the post-processor's special tokens; with `maxLength`,
    /// the text's first ids that fit, the special tokens always kept.
    public func encode(_ text: String, maxLength: Int?) -> [Int] {
        var content: [Int] = []
        for (piece, atStart) in AddedToken.split(text.unicodeScalars, by: rawTokens) {
            switch piece {
            case .token(let id): content.append(id)
            case .text(let raw):
                let normalized = normalizers.reduce(raw) { $1.apply(to: $0) }
                for (inner, innerAtStart) in AddedToken.split(normalized.unicodeScalars, by: normalizedTokens) {
                    switch inner {
                    case .token(let id): content.append(id)
                    case .text(let segment):
                        for word in preTokenizer.words(of: segment, atStart: atStart && innerAtStart) {
                            content += model.ids(of: word)
                        }
                    }
                }
            }
        }
        if let maxLength {
            let keep = max(maxLength - prefix.count - suffix.count, 0)
            if content.count > keep { content.removeSubrange(keep...) }
        }
        return prefix + content + suffix
    }
}

// MARK: - Added tokens

/// A token `tokenizer.json` lists in `added_tokens`, matched in the text before the model runs.
struct AddedToken: Sendable {
    let content: [Unicode.Scalar]
    let id: Int
    let leftStrip: Bool, rightStrip: Bool, singleWord: Bool, normalized: Bool

    init(_ node: JSONNode) throws {
        content = Array(try node.string("content").unicodeScalars)
        guard !content.isEmpty else { throw node.invalid("an added token with empty content") }
        id = try node.child("id").integer()
        leftStrip = try node.optional("lstrip")?.bool() ?? false
        rightStrip = try node.optional("rstrip")?.bool() ?? false
        singleWord = try node.optional("single_word")?.bool() ?? false
        normalized = try node.optional("normalized")?.bool() ?? false
    }

    enum Piece { case token(Int), text(String) }

    /// `text` cut into the tokens found (leftmost first, the longest at a position) and
    /// the non-empty text between them, each with whether it starts the text.
    static func split(_ text: String.UnicodeScalarView, by tokens: [AddedToken]) -> [(Piece, atStart: Bool)] {
        let scalars = Array(text)
        guard !tokens.isEmpty else { return scalars.isEmpty ? [] : [(.text(String(text)), true)] }
        var pieces: [(Piece, atStart: Bool)] = []
        var textStart = 0, position = 0
        func flush(upTo end: Int) {
            if end > textStart {
                pieces.append((.text(String(String.UnicodeScalarView(scalars[textStart..<end]))), textStart == 0))
            }
        }
        while position < scalars.count {
            var found: AddedToken?
            for token in tokens where token.content.count > found?.content.count ?? 0 && token.matches(scalars, at: position) {
                found = token
            }
            guard let token = found else {
                position += 1
                continue
            }
            var start = position, end = position + token.content.count
            if token.leftStrip { while start > textStart && scalars[start - 1].properties.isWhitespace { start -= 1 } }
            if token.rightStrip { while end < scalars.count && scalars[end].properties.isWhitespace { end += 1 } }
            flush(upTo: start)
            pieces.append((.token(token.id), start == 0))
            (textStart, position) = (end, end)
        }
        flush(upTo: scalars.count)
        return pieces
    }

    private func matches(_ scalars: [Unicode.Scalar], at position: Int) -> Bool {
        guard position + content.count <= scalars.count, scalars[position..<(position + content.count)].elementsEqual(content) else {
            return false
        }
        guard singleWord else { return true }
        func isWordCharacter(_ index: Int) -> Bool {
            scalars.indices.contains(index) && (scalars[index].properties.isAlphabetic || scalars[index].properties.numericType != nil
                || scalars[index] == "_")
        }
        return !isWordCharacter(position - 1) && !isWordCharacter(position + content.count)
    }
}

// MARK: - Normalisers

/// One step of a `tokenizer.json` normaliser.
enum TextNormalizer: Sendable {
    case precompiled(PrecompiledCharsmap)
    case strip(left: Bool, right: Bool)
    case replace(pattern: ReplacePattern, content: String)
    case unicodeForm(UnicodeForm)
    case lowercase
    case prepend(String)

    /// A Unicode normalisation form, named as `tokenizer.json` names it.
    enum UnicodeForm: String { case nfc = "NFC", nfd = "NFD", nfkc = "NFKC", nfkd = "NFKD" }

    /// A literal or regular-expression pattern of a Replace normaliser.
    enum ReplacePattern: @unchecked Sendable {  // NSRegularExpression is immutable and thread-safe
        case literal(String)
        case regex(NSRegularExpression)
    }

    /// The steps of `node`, a single normaliser or a Sequence of them.
    static func sequence(_ node: JSONNode) throws -> [TextNormalizer] {
        if node.isNull { return [] }
        let type = try node.string("type")
        if type == "Sequence" { return try node.child("normalizers").array().flatMap(sequence) }
        switch type {
        case "Precompiled":
            guard let bytes = Data(base64Encoded: try node.string("precompiled_charsmap")) else {
                throw node.invalid("precompiled_charsmap is not base64")
            }
            return [.precompiled(try PrecompiledCharsmap(bytes: Array(bytes)))]
        case "Strip":
            return [.strip(left: try node.child("strip_left").bool(), right: try node.child("strip_right").bool())]
        case "Replace":
            let pattern = try node.child("pattern"), content = try node.string("content")
            if let literal = try pattern.optional("String") { return [.replace(pattern: .literal(try literal.string()), content: content)] }
            let expression = try pattern.string("Regex")
            do {
                return [.replace(pattern: .regex(try NSRegularExpression(pattern: expression)), content: content)]
            } catch {
                throw node.invalid("Replace pattern \(expression) is not a regular expression Graft can compile")
            }
        case "Lowercase": return [.lowercase]
        case "Prepend": return [.prepend(try node.string("prepend"))]
        default:
            guard let form = UnicodeForm(rawValue: type) else { throw node.invalid("normalizer type \(type) is not implemented") }
            return [.unicodeForm(form)]
        }
    }

    func apply(to text: String) -> String {
        switch self {
        case .precompiled(let charsmap): return charsmap.normalize(text)
        case let .strip(left, right):
            var scalars = Substring(text).unicodeScalars
            while left, let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
            while right, let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
            return String(scalars)
        case let .replace(.literal(pattern), content): return text.replacingOccurrences(of: pattern, with: content)
        case let .replace(.regex(expression), content):
            return expression.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text),
                                                      withTemplate: NSRegularExpression.escapedTemplate(for: content))
        case .unicodeForm(.nfc): return Self.composingHangul(text.precomposedStringWithCanonicalMapping)
        case .unicodeForm(.nfd): return text.decomposedStringWithCanonicalMapping
        case .unicodeForm(.nfkc): return Self.composingHangul(text.precomposedStringWithCompatibilityMapping)
        case .unicodeForm(.nfkd): return text.decomposedStringWithCompatibilityMapping
        case .lowercase: return text.lowercased()
        case .prepend(let prefix): return text.isEmpty ? text : prefix + text
        }
    }
}

extension TextNormalizer {
    /// `text` with conjoining jamo (L V, L V T) composed into Hangul syllables, the part of
    /// Unicode composition that swift-corelibs-foundation's NFC and NFKC leave out.
    static func composingHangul(_ text: String) -> String {
        let (syllableBase, leadBase, vowelBase, trailBase): (UInt32, UInt32, UInt32, UInt32) = (0xAC00, 0x1100, 0x1161, 0x11A7)
        var result: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if let last = result.last?.value {
                if (leadBase..<(leadBase + 19)).contains(last), (vowelBase..<(vowelBase + 21)).contains(value) {
                    result[result.count - 1] = Unicode.Scalar(syllableBase + ((last - leadBase) * 21 + value - vowelBase) * 28)!
                    continue
                }
                if (syllableBase..<(syllableBase + 11172)).contains(last), (last - syllableBase) % 28 == 0,
                   ((trailBase + 1)..<(trailBase + 28)).contains(value) {
                    result[result.count - 1] = Unicode.Scalar(last + value - trailBase)!
                    continue
                }
            }
            result.append(scalar)
        }
        return String(String.UnicodeScalarView(result))
    }
}

// MARK: - Pre-tokenizers

/// A `tokenizer.json` pre-tokenizer: how a normalised segment becomes the model's words.
enum PreTokenizer: Sendable {
    /// SentencePiece's spaces: each space becomes `replacement`, which is prepended to
    /// every segment (`always`) or the text's first one (`first`), and with `split` starts each word.
    case metaspace(replacement: Unicode.Scalar, prepend: Prepend, split: Bool)
    /// GPT-2's words (its regular expression), each byte then spelt as a printable character.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)

    enum Prepend: String { case always, first, never }

    init(_ node: JSONNode) throws {
        switch try node.string("type") {
        case "Metaspace":
            let replacement = try node.string("replacement").unicodeScalars
            guard replacement.count == 1, let scalar = replacement.first else { throw node.invalid("Metaspace replacement must be one character") }
            let scheme: Prepend
            if let name = try node.optional("prepend_scheme") {
                guard let parsed = Prepend(rawValue: try name.string()) else { throw node.invalid("unknown Metaspace prepend_scheme") }
                scheme = parsed
            } else {
                scheme = try node.optional("add_prefix_space")?.bool() == false ? .never : .always
            }
            self = .metaspace(replacement: scalar, prepend: scheme, split: try node.optional("split")?.bool() ?? true)
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: try node.optional("add_prefix_space")?.bool() ?? true,
                              useRegex: try node.optional("use_regex")?.bool() ?? true)
        case let other:
            throw node.invalid("pre_tokenizer type \(other) is not implemented (expected Metaspace or ByteLevel)")
        }
    }

    func words(of segment: String, atStart: Bool) -> [String] {
        switch self {
        case let .metaspace(replacement, prepend, split):
            var scalars = Array(segment.unicodeScalars.map { $0 == " " ? replacement : $0 })
            if prepend == .always || (prepend == .first && atStart), scalars.first != replacement { scalars.insert(replacement, at: 0) }
            guard split else { return [String(String.UnicodeScalarView(scalars))] }
            var words: [String] = [], start = 0
            for index in scalars.indices.dropFirst() where scalars[index] == replacement {
                words.append(String(String.UnicodeScalarView(scalars[start..<index])))
                start = index
            }
            return words + [String(String.UnicodeScalarView(scalars[start...]))]
        case let .byteLevel(addPrefixSpace, useRegex):
            let text = addPrefixSpace && !segment.hasPrefix(" ") ? " " + segment : segment
            let words = useRegex ? ByteLevelAlphabet.gpt2Words(text) : [text]
            return words.map(ByteLevelAlphabet.spell)
        }
    }
}

// MARK: - Models

/// The subword model of a `tokenizer.json`.
enum SubwordModel: Sendable, CustomStringConvertible {
    case unigram(UnigramModel)
    case bytePair(BytePairModel)

    var description: String {
        switch self {
        case .unigram: "SentencePiece unigram"
        case .bytePair: "byte-level BPE"
        }
    }

    var count: Int {
        switch self {
        case .unigram(let model): model.vocabulary.count
        case .bytePair(let model): model.count
        }
    }

    var unknownID: Int? {
        switch self {
        case .unigram(let model): model.unknownID
        case .bytePair(let model): model.unknownID
        }
    }

    func id(of piece: String) -> Int? {
        switch self {
        case .unigram(let model): model.vocabulary.id(of: piece)
        case .bytePair(let model): model.ids[piece]
        }
    }

    func ids(of word: String) -> [Int] {
        switch self {
        case .unigram(let model): model.ids(of: word)
        case .bytePair(let model): model.ids(of: word)
        }
    }
}

/// A `tokenizer.json` Unigram model: the best-scoring split of each word, runs of
/// characters no piece covers fused into one unknown token (or spelt as `<0xXX>`
/// byte pieces with `byte_fallback`).
struct UnigramModel: Sendable {
    let vocabulary: UnigramVocabulary
    let unknownID: Int
    /// The ids of the 256 `<0xXX>` pieces, when byte fallback is on.
    let byteIDs: [Int]?

    init(_ node: JSONNode) throws {
        var pieces: [String] = [], scores: [Float] = []
        for entry in try node.child("vocab").array() {
            let pair = try entry.array()
            guard pair.count == 2 else { throw node.invalid("model.vocab entries must be [piece, score]") }
            pieces.append(try pair[0].string())
            scores.append(Float(try pair[1].number()))
        }
        let vocabulary = try UnigramVocabulary(pieces: pieces, scores: scores)
        self.vocabulary = vocabulary
        guard let unknown = try node.optional("unk_id")?.integer(), pieces.indices.contains(unknown) else {
            throw node.invalid("model.unk_id must be the id of a piece")
        }
        unknownID = unknown
        if try node.optional("byte_fallback")?.bool() == true {
            let ids = (0..<256).map { vocabulary.id(of: String(format: "<0x%02X>", $0)) }
            byteIDs = ids.contains(nil) ? nil : ids.compactMap { $0 }
        } else {
            byteIDs = nil
        }
    }

    func ids(of word: String) -> [Int] {
        var bytes: [UInt8] = [], starts: [Int] = []
        for scalar in word.unicodeScalars {
            starts.append(bytes.count)
            bytes.append(contentsOf: scalar.utf8)
        }
        starts.append(bytes.count)
        var ids: [Int] = [], unknownStart: Int?
        func closeUnknown(at end: Int) {
            guard let start = unknownStart else { return }
            if let byteIDs { ids += bytes[starts[start]..<starts[end]].map { byteIDs[Int($0)] } } else { ids.append(unknownID) }
            unknownStart = nil
        }
        for piece in vocabulary.segment(symbols: bytes, starts: starts, excluding: unknownID) {
            if let id = piece.id {
                closeUnknown(at: piece.symbols.lowerBound)
                ids.append(id)
            } else if unknownStart == nil {
                unknownStart = piece.symbols.lowerBound
            }
        }
        closeUnknown(at: starts.count - 1)
        return ids
    }
}
