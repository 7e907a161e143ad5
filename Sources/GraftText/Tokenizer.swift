/// Turns text into token ids for a model.
public protocol Tokenizer: Sendable {
    /// The ids of `text`, including the model's special tokens (for example
    /// `<s> … </s>`). With `maxLength`, a longer result is cut to `maxLength`
    /// ids, keeping the closing special token.
    func encode(_ text: String, maxLength: Int?) -> [Int]
    /// The id used to pad the rows of a batch.
    var padID: Int { get }
    /// The number of distinct ids this tokenizer produces (ids are `0..<vocabularySize`).
    var vocabularySize: Int { get }
    /// The ids that frame or pad a text (`<s>`, `</s>`, `<pad>` / `[CLS]`, `[SEP]`, `[PAD]`):
    /// never masked for masked-LM training.
    var specialIDs: Set<Int> { get }
    /// The id of the mask token (`<mask>` / `[MASK]`).
    var maskID: Int { get }
    /// The id produced for text the vocabulary does not cover (`<unk>` / `[UNK]`).
    var unknownID: Int { get }
}

/// Several encoded texts padded to a common length.
public struct Batch: Sendable, Equatable {
    /// One row per text, each `sequenceLength` ids long: the text's ids, then `padID`s.
    public let ids: [[Int]]
    /// One row per text: 1 for each of the text's ids, 0 for padding.
    public let attentionMask: [[Int]]
    /// The number of real (unpadded) ids of each text.
    public let lengths: [Int]

    /// The padded length of every row: the longest text's length (0 for no texts).
    public var sequenceLength: Int { lengths.max() ?? 0 }
}

extension Tokenizer {
    /// Encodes every text and pads the rows with `padID` to the longest one.
    public func encodeBatch(_ texts: [String], maxLength: Int?) -> Batch {
        let encoded = texts.map { encode($0, maxLength: maxLength) }
        let width = encoded.map(\.count).max() ?? 0
        return Batch(
            ids: encoded.map { $0 + Array(repeating: padID, count: width - $0.count) },
            attentionMask: encoded.map { Array(repeating: 1, count: $0.count) + Array(repeating: 0, count: width - $0.count) },
            lengths: encoded.map(\.count))
    }
}

/// An error from building a tokenizer or from the text given to it.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes are not valid UTF-8; `offset` is where the first ill-formed sequence starts.
    case invalidUTF8(offset: Int)
    /// The vocabulary has no pieces.
    case emptyVocabulary
    /// `pieces` and `scores` differ in length.
    case scoreCountMismatch(pieces: Int, scores: Int)
    /// The special token `name` has an id outside `0..<vocabularySize`.
    case specialIDOutOfRange(name: String, id: Int, vocabularySize: Int)
    /// The vocabulary lacks a piece the tokenizer needs.
    case missingPiece(String)
    /// No tokenizer file exists at `path`.
    case fileNotFound(path: String)
    /// The tokenizer file at `path` cannot be used; `reason` says what was expected and found.
    case invalidFile(path: String, reason: String)
    /// A stored tokenizer definition is malformed.
    case invalidSpecification(String)

    /// A sentence saying what was expected and what was found.
    public var description: String {
        switch self {
        case .invalidUTF8(let offset):
            "text is not valid UTF-8: ill-formed sequence at byte offset \(offset)"
        case .emptyVocabulary:
            "tokenizer vocabulary is empty; expected at least one piece"
        case .scoreCountMismatch(let pieces, let scores):
            "tokenizer has \(pieces) pieces but \(scores) scores; expected one score per piece"
        case .specialIDOutOfRange(let name, let id, let vocabularySize):
            "tokenizer special token \(name) has id \(id); expected an id in 0..<\(vocabularySize)"
        case .missingPiece(let piece):
            "tokenizer vocabulary has no piece '\(piece)'"
        case .fileNotFound(let path):
            "tokenizer file not found: \(path)"
        case .invalidFile(let path, let reason):
            "invalid tokenizer file \(path): \(reason)"
        case .invalidSpecification(let detail):
            "invalid tokenizer definition: \(detail)"
        }
    }
}
