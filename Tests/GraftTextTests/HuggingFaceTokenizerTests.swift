import Foundation
import GraftIO
import GraftTestSupport
import GraftText
import Testing

/// Hugging Face `tokenizer.json` files of the three kinds XLM-R-family and RoBERTa
/// checkpoints ship, against the ids `tokenizers` gives (Fixtures/make_huggingface_fixtures.py).
@Suite struct HuggingFaceTokenizerTests {
    static func fixture(_ name: String) throws -> String {
        try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: nil)).path
    }

    static func expectMatches(_ tokenizer: any Tokenizer, expected: String) throws {
        let cases = try TokenizerFixtureCase.load(expected)
        #expect(cases.filter { $0.maxLength == nil }.count >= 330)
        var mismatches = 0
        for fixture in cases {
            let ids = tokenizer.encode(fixture.text, maxLength: fixture.maxLength)
            if ids != fixture.ids {
                mismatches += 1
                if mismatches <= 20 {
                    Issue.record("""
                        \(fixture.text.debugDescription) (maxLength \(fixture.maxLength.map(String.init) ?? "none")): \
                        got \(ids), tokenizers gives \(fixture.ids)
                        """)
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) encodings differ from tokenizers")
    }

    @Test(arguments: ["xlmr", "byte_fallback", "roberta"])
    func matchesTokenizersOnEveryFixtureText(name: String) throws {
        let tokenizer = try HuggingFaceTokenizer.load(tokenizerJSON: try Self.fixture("\(name)/tokenizer.json"))
        try Self.expectMatches(tokenizer, expected: "\(name)_expected")
    }

    @Test func xlmRobertaSpecialIDs() throws {
        let tokenizer = try HuggingFaceTokenizer.load(tokenizerJSON: try Self.fixture("xlmr/tokenizer.json"))
        #expect([tokenizer.padID, tokenizer.unknownID, tokenizer.maskID, tokenizer.vocabularySize] as [Int] == [1, 3, 3001, 3002])
        #expect(tokenizer.specialIDs == Set([0, 1, 2]))
        #expect(tokenizer.modelDescription == "SentencePiece unigram")
    }

    @Test func roundTripsThroughItsSpecification() throws {
        let tokenizer = try HuggingFaceTokenizer.load(tokenizerJSON: try Self.fixture("roberta/tokenizer.json"))
        let stored = try JSONEncoder().encode(try TokenizerSpecification(tokenizer))
        let rebuilt = try JSONDecoder().decode(TokenizerSpecification.self, from: stored).makeTokenizer()
        let text = "Moni! Muli bwanji <mask> lero?"
        #expect(rebuilt.encode(text, maxLength: nil) == tokenizer.encode(text, maxLength: nil))
        #expect(rebuilt.maskID == 4 && rebuilt.padID == 1)
    }

    @Test func refusesWhatItDoesNotImplementNamingWhere() throws {
        var spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: try Self.fixture("roberta/tokenizer.json"))))
            as! [String: Any]
        spec["pre_tokenizer"] = ["type": "Whitespace"]
        let text = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        #expect(throws: TokenizerError.invalidSpecification("at pre_tokenizer: pre_tokenizer type Whitespace is not implemented (expected Metaspace or ByteLevel)")) {
            try HuggingFaceTokenizer(.init(tokenizerJSON: text))
        }
        let truncated = #expect(throws: TokenizerError.self) { try HuggingFaceTokenizer(.init(tokenizerJSON: String(text.prefix(100)))) }
        #expect(truncated?.description.hasPrefix("invalid tokenizer definition: not JSON") == true)
    }
}

/// XLM-R's `sentencepiece.bpe.model`, read as transformers converts it.
@Suite struct SentencePieceModelTests {
    @Test func matchesTheConvertedTokenizerOnEveryFixtureText() throws {
        let model = try SentencePieceModel(contentsOf: try HuggingFaceTokenizerTests.fixture("xlmr/sentencepiece.bpe.model"))
        #expect(model.pieces.count == 3000 && model.addsDummyPrefix && !model.charsmap.isEmpty)
        let tokenizer = try HuggingFaceTokenizer(.init(tokenizerJSON: try model.xlmRobertaTokenizerJSON()))
        try HuggingFaceTokenizerTests.expectMatches(tokenizer, expected: "xlmr_expected")
    }

    @Test func refusesATruncatedModel() throws {
        let path = try HuggingFaceTokenizerTests.fixture("xlmr/sentencepiece.bpe.model")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = FileManager.default.temporaryDirectory.appendingPathComponent("truncated-\(UUID()).model")
        try bytes.prefix(bytes.count / 2).write(to: truncated)
        defer { try? FileManager.default.removeItem(at: truncated) }
        let error = #expect(throws: TokenizerError.self) { try SentencePieceModel(contentsOf: truncated.path) }
        #expect(error?.description.contains("not a SentencePiece model: a field of") == true)
    }
}

/// `adapt import` of a Hugging Face directory whose tokenizer is a `tokenizer.json` or
/// XLM-R's `sentencepiece.bpe.model`, and the export that writes the `tokenizer.json` back.
@Suite struct HuggingFaceDirectoryTokenizerTests {
    @Test func exportedDirectoryImportsWithItsTokenizerJSONOrSentencePieceModel() throws {
        let tokenizer = try HuggingFaceTokenizer.load(tokenizerJSON: try HuggingFaceTokenizerTests.fixture("xlmr/tokenizer.json"))
        let backbone = try TinyBackbone.make(tokenizer: tokenizer)
        let directory = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try backbone.exportHuggingFace(to: directory)
        let files = URL(fileURLWithPath: directory)
        // transformers reads tokenizer.json; Graft's own tokenizer file would take precedence, so drop it
        try FileManager.default.removeItem(at: files.appendingPathComponent(Backbone.tokenizerFile))
        let viaJSON = try Backbone.importHuggingFace(directory: directory)
        #expect(viaJSON.checksum == backbone.checksum)
        #expect(viaJSON.tokenizer is HuggingFaceTokenizer)

        try FileManager.default.removeItem(at: files.appendingPathComponent("tokenizer.json"))
        try FileManager.default.copyItem(atPath: try HuggingFaceTokenizerTests.fixture("xlmr/sentencepiece.bpe.model"),
                                         toPath: files.appendingPathComponent("sentencepiece.bpe.model").path)
        let viaModel = try Backbone.importHuggingFace(directory: directory)
        for text in ["Pachiyambi Mulungu adalenga kumwamba", "  ＡＢＣ <mask>  x ", ""] {
            #expect(viaModel.tokenizer.encode(text, maxLength: 16) == tokenizer.encode(text, maxLength: 16))
        }
    }
}
