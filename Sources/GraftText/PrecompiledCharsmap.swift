/// SentencePiece's compiled normalisation rules (`precompiled_charsmap`, e.g. its
/// `nmt_nfkc` rules): a double-array trie from UTF-8 strings to offsets in a pool of
/// NUL-terminated replacement strings.
///
/// Layout: a little-endian `UInt32` byte size of the trie, the trie's units (each a
/// little-endian `UInt32` in the darts-clone encoding), then the replacement pool.
/// ``normalize(_:)`` applies the rules as Hugging Face `tokenizers` does, quirks included.
public struct PrecompiledCharsmap: Sendable, Equatable {
    /// The charsmap as stored (kept to write it back unchanged).
    public let bytes: [UInt8]
    private let units: [UInt32]
    private let pool: [UInt8]

    /// Parses a charsmap.
    /// - Throws: ``TokenizerError/invalidSpecification(_:)`` if the trie size does not fit the bytes.
    public init(bytes: [UInt8]) throws {
        guard bytes.count >= 4 else {
            throw TokenizerError.invalidSpecification("precompiled charsmap of \(bytes.count) bytes; expected at least 4")
        }
        let trieBytes = Int(Self.littleEndianWord(bytes, at: 0))
        guard trieBytes % 4 == 0, trieBytes <= bytes.count - 4 else {
            throw TokenizerError.invalidSpecification(
                "precompiled charsmap declares a trie of \(trieBytes) bytes in \(bytes.count - 4); expected a multiple of 4 that fits")
        }
        self.bytes = bytes
        units = stride(from: 4, to: 4 + trieBytes, by: 4).map { Self.littleEndianWord(bytes, at: $0) }
        pool = Array(bytes[(4 + trieBytes)...])
    }

    /// `text` with the rules applied: each extended grapheme cluster shorter than 6
    /// UTF-8 bytes that starts with a rule's key is replaced whole by that rule's
    /// replacement (the shortest matching key wins, as in SentencePiece's lookup);
    /// otherwise each scalar is replaced by its rule, or kept.
    public func normalize(_ text: String) -> String {
        var result = String.UnicodeScalarView()
        for grapheme in text {
            if grapheme.utf8.count < 6, let replacement = replacement(startingWith: grapheme.utf8) {
                result.append(contentsOf: replacement)
                continue
            }
            for scalar in grapheme.unicodeScalars {
                if let replacement = replacement(startingWith: scalar.utf8) {
                    result.append(contentsOf: replacement)
                } else {
                    result.append(scalar)
                }
            }
        }
        return String(result)
    }

    /// The replacement of the shortest key that is a prefix of `key` (the search stops at a NUL byte).
    private func replacement(startingWith key: some Sequence<UInt8>) -> String.UnicodeScalarView? {
        guard let first = units.first else { return nil }
        var position = Int(Self.offset(first))
        for byte in key {
            if byte == 0 { break }
            position ^= Int(byte)
            guard units.indices.contains(position) else { return nil }
            let unit = units[position]
            guard unit & 0x8000_00FF == UInt32(byte) else { return nil }
            position ^= Int(Self.offset(unit))
            if (unit >> 8) & 1 == 1 {
                guard units.indices.contains(position) else { return nil }
                let start = Int(units[position] & 0x7FFF_FFFF)
                guard start <= pool.count else { return nil }
                let end = pool[start...].firstIndex(of: 0) ?? pool.count
                return String(decoding: pool[start..<end], as: UTF8.self).unicodeScalars
            }
        }
        return nil
    }

    private static func offset(_ unit: UInt32) -> UInt32 { (unit >> 10) << ((unit & (1 << 9)) >> 6) }

    private static func littleEndianWord(_ bytes: [UInt8], at index: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[index + $1]) << (8 * $1) }
    }
}
