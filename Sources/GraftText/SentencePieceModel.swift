import Foundation

/// A SentencePiece model file (`sentencepiece.bpe.model`, a `ModelProto` protocol buffer),
/// read for the pieces, scores and normalisation rules an XLM-R checkpoint needs when it
/// ships no `tokenizer.json`.
public struct SentencePieceModel: Sendable {
    /// A vocabulary entry: the piece's text and its score (a log probability in a unigram model).
    public struct Piece: Sendable, Equatable {
        /// The piece's text, with `▁` (U+2581) for a space.
        public var text: String
        /// The piece's score (0 when the file gives none).
        public var score: Float
    }

    /// The vocabulary in the model's order (SentencePiece ids: `<unk>`, `<s>`, `</s>` first).
    public var pieces: [Piece]
    /// The compiled normalisation rules (empty when the model has none).
    public var charsmap: [UInt8]
    /// Whether a space is prepended to the text (SentencePiece's `add_dummy_prefix`).
    public var addsDummyPrefix: Bool

    /// Reads `sentencepiece.bpe.model` / `*.model`.
    /// - Throws: ``TokenizerError/fileNotFound(path:)``, or ``TokenizerError/invalidFile(path:reason:)``
    ///   if the bytes are not a SentencePiece model.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw TokenizerError.fileNotFound(path: path) }
        do {
            try self.init(bytes: [UInt8](data))
        } catch let ProtobufReader.Malformed.at(offset, detail) {
            throw TokenizerError.invalidFile(path: path, reason: "not a SentencePiece model: \(detail) at byte \(offset)")
        }
    }

    init(bytes: [UInt8]) throws {
        pieces = []
        charsmap = []
        addsDummyPrefix = true
        var model = ProtobufReader(bytes[...])
        while let (field, value) = try model.next() {
            switch (field, value) {
            case (1, .bytes(let message)):
                var piece = ProtobufReader(message)
                var text = "", score: Float = 0
                while let (pieceField, pieceValue) = try piece.next() {
                    switch (pieceField, pieceValue) {
                    case (1, .bytes(let utf8)): text = String(decoding: utf8, as: UTF8.self)
                    case (2, .fixed32(let bits)): score = Float(bitPattern: bits)
                    default: break
                    }
                }
                pieces.append(Piece(text: text, score: score))
            case (3, .bytes(let message)):
                var normalizer = ProtobufReader(message)
                while let (normalizerField, normalizerValue) = try normalizer.next() {
                    switch (normalizerField, normalizerValue) {
                    case (2, .bytes(let rules)): charsmap = Array(rules)
                    case (3, .varint(let flag)): addsDummyPrefix = flag != 0
                    default: break
                    }
                }
            default: break
            }
        }
        guard pieces.count > 3 else {
            throw ProtobufReader.Malformed.at(offset: bytes.count, detail: "\(pieces.count) pieces; expected <unk>, <s>, </s> and more")
        }
    }

    /// The `tokenizer.json` transformers' converter makes of an XLM-R SentencePiece model:
    /// fairseq's ids (`<s>` 0, `<pad>` 1, `</s>` 2, `<unk>` 3, the model's pieces from its
    /// fourth on, `<mask>` last), the charsmap, right strip and space runs as `▁`, Metaspace,
    /// and `<s> … </s>`.
    public func xlmRobertaTokenizerJSON() throws -> String {
        let specials = ["<s>", "<pad>", "</s>", "<unk>"]
        let vocabulary: [[Any]] = specials.map { [$0, 0.0] } + pieces.dropFirst(3).map { [$0.text, Double($0.score)] } + [["<mask>", 0.0]]
        let added: [[String: Any]] = (specials + ["<mask>"]).enumerated().map { index, content in
            let isMask = content == "<mask>"
            return ["id": isMask ? vocabulary.count - 1 : index, "content": content, "single_word": false, "lstrip": isMask,
                    "rstrip": false, "normalized": isMask, "special": true]
        }
        var normalizers: [[String: Any]] = [
            ["type": "Strip", "strip_left": false, "strip_right": true],
            ["type": "Replace", "pattern": ["Regex": " {2,}"], "content": "\u{2581}"],
        ]
        if !charsmap.isEmpty { normalizers.insert(["type": "Precompiled", "precompiled_charsmap": Data(charsmap).base64EncodedString()], at: 0) }
        let metaspace: [String: Any] = ["type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": addsDummyPrefix ? "always" : "never",
                                        "split": true]
        let template: [[String: Any]] = [["SpecialToken": ["id": "<s>", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                                         ["SpecialToken": ["id": "</s>", "type_id": 0]]]
        let file: [String: Any] = [
            "version": "1.0", "added_tokens": added,
            "normalizer": ["type": "Sequence", "normalizers": normalizers],
            "pre_tokenizer": metaspace, "decoder": metaspace,
            "post_processor": ["type": "TemplateProcessing", "single": template,
                               "special_tokens": ["<s>": ["id": "<s>", "ids": [0], "tokens": ["<s>"]],
                                                  "</s>": ["id": "</s>", "ids": [2], "tokens": ["</s>"]]]],
            "model": ["type": "Unigram", "unk_id": 3, "vocab": vocabulary, "byte_fallback": false],
        ]
        return String(decoding: try JSONSerialization.data(withJSONObject: file, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// Reads protocol-buffer fields one at a time (wire types 0, 1, 2 and 5).
struct ProtobufReader {
    enum Value {
        case varint(UInt64), fixed64(UInt64), bytes(ArraySlice<UInt8>), fixed32(UInt32)
    }

    enum Malformed: Error { case at(offset: Int, detail: String) }

    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    /// The next field number and value, or nil at the end.
    mutating func next() throws -> (Int, Value)? {
        guard !bytes.isEmpty else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try fixed(8)))
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.count) else { throw Malformed.at(offset: bytes.startIndex, detail: "a field of \(length) bytes past the end") }
            let value = bytes.prefix(Int(length))
            bytes = bytes.dropFirst(Int(length))
            return (field, .bytes(value))
        case 5: return (field, .fixed32(UInt32(try fixed(4))))
        case let wireType: throw Malformed.at(offset: bytes.startIndex, detail: "wire type \(wireType)")
        }
    }

    private mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard let byte = bytes.popFirst() else { throw Malformed.at(offset: bytes.startIndex, detail: "a truncated varint") }
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        throw Malformed.at(offset: bytes.startIndex, detail: "a varint longer than 10 bytes")
    }

    private mutating func fixed(_ count: Int) throws -> UInt64 {
        guard bytes.count >= count else { throw Malformed.at(offset: bytes.startIndex, detail: "a truncated fixed-width field") }
        defer { bytes = bytes.dropFirst(count) }
        return bytes.prefix(count).reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}
