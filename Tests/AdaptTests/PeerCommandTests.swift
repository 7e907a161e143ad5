import Foundation
import GraftIO
import GraftNN
import GraftTestSupport
import Testing

/// `adapt export --format transformers` and `adapt data tokenize`: what a PyTorch peer needs to run on Graft's
/// weights and tokens.
@Suite struct PeerCommands {
    @Test func exportedTransformersDirectoryImportsBackToTheSameBackbone() throws {
        let w = try Workspace()
        defer { w.remove() }
        let directory = w.directory + "/hf", reimported = w.directory + "/back.h5"
        let export = try runAdapt(["export", w.backbone, "--format", "transformers", "--output", directory])
        #expect(export.status == 0, "\(export.error)")
        #expect(export.output.contains("wrote \(directory) (transformers xlm-roberta, 2 layers, hidden 16"), "\(export.output)")
        let back = try runAdapt(["import", directory, "--output", reimported, "--name", "tiny-xlmr"])
        #expect(back.status == 0, "\(back.error)")
        let (original, loaded) = (try Backbone.load(from: w.backbone), try Backbone.load(from: reimported))
        #expect(loaded.checksum == original.checksum && loaded.configuration == original.configuration)
        for ((name, a), (_, b)) in zip(original.encoder.namedParameters(), loaded.encoder.namedParameters()) {
            #expect(a.value.scalars == b.value.scalars, "\(name)")
        }
        let input = EncoderInput(padding: [[0, 5, 6, 7, 2], [0, 9, 2]], padID: 1)
        #expect(loaded.encoder(input, context: .inference()).value.scalars == original.encoder(input, context: .inference()).value.scalars)
    }

    @Test func exportRefusesToOverwriteItsInputAndTheWrongKindOfFile() throws {
        let w = try Workspace()
        defer { w.remove() }
        let overwrite = try runAdapt(["export", w.backbone, "--format", "transformers", "--output", w.backbone])
        #expect(overwrite.status != 0 && overwrite.error.contains("is the input \(w.backbone); choose another output"), "\(overwrite.error)")
        #expect(try Backbone.load(from: w.backbone).name == "tiny-xlmr")
        let peft = try runAdapt(["export", w.backbone, "--format", "peft", "--output", w.directory + "/peft"])
        #expect(peft.status != 0)
        let corpus = try runAdapt(["export", w.corpus, "--format", "transformers", "--output", w.directory + "/hf"])
        #expect(corpus.status != 0 && corpus.error.contains(w.corpus), "\(corpus.error)")
    }

    struct Line: Decodable, Equatable { let ids: [Int]; let label: String?; let split: String }

    /// `adapt data tokenize` (by default with the tiny backbone's longest input, 32 ids) and its output lines.
    func tokenize(_ w: Workspace, _ data: String, _ extra: [String] = ["--max-length", "32"]) throws -> [Line] {
        let output = w.directory + "/tokens.jsonl"
        let result = try runAdapt(["data", "tokenize", data, "--backbone", w.backbone, "--output", output] + extra)
        try #require(result.status == 0, "\(result.error)")
        return try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Line.self, from: Data($0.utf8))
        }
    }

    @Test func tokenizeWritesALabelledSetAsTheBackbonesIds() throws {
        let w = try Workspace()
        defer { w.remove() }
        let tokenizer = try Backbone.load(from: w.backbone).tokenizer
        let lines = try tokenize(w, w.labelled)
        #expect(["train", "dev", "test"].map { split in lines.count { $0.split == split } } == [32, 8, 8])
        for line in lines {
            #expect(line.ids == tokenizer.encode(line.label == "wet" ? "water mawu a" : "ndi wind a", maxLength: 32))
        }
        let sampled = try tokenize(w, w.labelled, ["--train-examples", "5", "--test-examples", "2", "--max-length", "3"])
        #expect(["train", "dev", "test"].map { split in sampled.count { $0.split == split } } == [5, 8, 2])
        #expect(sampled.allSatisfy { $0.ids.count == 3 && $0.ids.first == 0 && $0.ids.last == 2 })
        let text = try String(contentsOfFile: w.directory + "/tokens.jsonl", encoding: .utf8)
        #expect(text.hasPrefix(#"{"ids":[0,"#) && text.contains(#"],"label":"wet","split":"train"}"#))
    }

    @Test func tokenizeWritesACorpusWithoutLabelsAndItsHeldOutTextsAsDev() throws {
        let w = try Workspace()
        defer { w.remove() }
        let tokenizer = try Backbone.load(from: w.backbone).tokenizer
        let texts = try String(contentsOfFile: w.corpus, encoding: .utf8).split(separator: "\n").map(String.init)
        let lines = try tokenize(w, w.corpus)
        #expect(lines.allSatisfy { $0.label == nil })
        func ids(_ keep: (Int) -> Bool) -> [[Int]] {
            texts.indices.filter(keep).map { tokenizer.encode(texts[$0], maxLength: 32) }.sorted { $0.lexicographicallyPrecedes($1) }
        }
        #expect(lines.filter { $0.split == "train" }.map(\.ids).sorted { $0.lexicographicallyPrecedes($1) } == ids { $0 % 10 != 9 })
        #expect(lines.filter { $0.split == "dev" }.map(\.ids).sorted { $0.lexicographicallyPrecedes($1) } == ids { $0 % 10 == 9 })
    }

    @Test func tokenizeRejectsTaggingSetsLengthsPastThePositionsAndOverwritingItsInput() throws {
        let w = try Workspace()
        defer { w.remove() }
        let tagging = try runAdapt(["data", "tokenize", "turkish-pos", "--backbone", w.backbone, "--output", w.directory + "/t.jsonl"])
        #expect(tagging.status != 0 && tagging.error.contains("turkish-pos is a tagging set"), "\(tagging.error)")
        let long = try runAdapt(["data", "tokenize", w.labelled, "--backbone", w.backbone, "--output", w.directory + "/t.jsonl", "--max-length", "33"])
        #expect(long.status != 0 && long.error.contains("--max-length must be between 2 and the backbone's 32 positions, got 33"), "\(long.error)")
        let overwrite = try runAdapt(["data", "tokenize", w.labelled, "--backbone", w.backbone, "--output", w.labelled])
        #expect(overwrite.status != 0 && overwrite.error.contains("is the input"), "\(overwrite.error)")
    }
}
