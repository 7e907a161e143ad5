import Foundation
import GraftAdapters
import GraftData
import GraftIO
import GraftTestSupport
import GraftTrain
import Testing

/// `adapt predict` and `adapt embed --adapter`: what a trained adapter answers on new text,
/// checked against the library computing the same model one text at a time.
@Suite struct PredictCommands {
    let texts = ["water mawu a", "ndi wind a", "mawu", "a a ndi water wind mawu"]
    var input: Data { Data((texts.joined(separator: "\n") + "\n").utf8) }

    /// A language adapter and a sequence task adapter trained on it, in the workspace.
    func trainStack(_ w: Workspace) throws -> (language: String, task: String) {
        let (language, task) = (w.directory + "/lang.h5", w.directory + "/task.h5")
        let mlm = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--method", "seq_bn", "--steps", "4",
                                "--batch-size", "4", "--learning-rate", "0.01", "--output", language])
        #expect(mlm.status == 0, "\(mlm.error)")
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "lora", "--stack-on", language,
                                  "--steps", "10", "--batch-size", "8", "--learning-rate", "0.01", "--output", task])
        #expect(train.status == 0, "\(train.error)")
        return (language, task)
    }

    struct SequenceLine: Decodable { let label: String; let probabilities: [String: Float] }

    @Test func predictAnswersWhatTheStackedModelComputesTextByText() throws {
        let w = try Workspace()
        defer { w.remove() }
        let (language, task) = try trainStack(w)
        let result = try runAdapt(["predict", "--backbone", w.backbone, "--adapter", task, "--stack-on", language, "--batch-size", "3"],
                                  input: input)
        #expect(result.status == 0, "\(result.error)")
        let lines = try result.output.split(separator: "\n").map { try JSONDecoder().decode(SequenceLine.self, from: Data($0.utf8)) }
        try #require(lines.count == texts.count)

        let loaded = try AdaptedModel.load(backbone: w.backbone, adapter: task, stackOn: language)
        #expect(try expectAnswers(lines, to: texts, of: loaded) == ["dry", "wet"])

        let top = try runAdapt(["predict", "--backbone", w.backbone, "--adapter", task, "--stack-on", language, "--top-k", "1"], input: input)
        let topLines = try top.output.split(separator: "\n").map { try JSONDecoder().decode(SequenceLine.self, from: Data($0.utf8)) }
        #expect(topLines.map(\.label) == lines.map(\.label))
        #expect(topLines.allSatisfy { $0.probabilities.count == 1 && $0.probabilities[$0.label] != nil })
    }

    /// Checks that `lines` answer `texts` with what `loaded` computes text by text, and returns its labels, sorted.
    func expectAnswers(_ lines: [SequenceLine], to texts: [String], of loaded: AdaptedModel) throws -> [String] {
        let classifier = try #require(loaded.classifier)
        for (text, line) in zip(texts, lines) {
            let ids = loaded.backbone.tokenizer.encode(text, maxLength: 128)
            let expected = classifier.logits([ids], context: loaded.model.context()).logits.value.softmax().scalars
            for (label, probability) in zip(classifier.labels, expected) {
                #expect(abs(try #require(line.probabilities[label]) - probability) < 1e-5, "\(text): \(label)")
            }
            #expect(line.label == classifier.labels[expected.indices.max { expected[$0] < expected[$1] }!])
        }
        return classifier.labels.sorted()
    }

    /// `adapt predict --adapter DIR` on an AdapterHub directory saved with its classification head (one layer,
    /// or AdapterHub's default of two with tanh) answers with that head's labels, as the library computes with
    /// the adapter and head read from it.
    @Test(arguments: ["adapterhub_lora_bert", "adapterhub_head2_bert"])
    func predictAnswersWithAnAdapterHubHeadsLabels(fixture: String) throws {
        let backbone = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: backbone) }
        let imported = try runAdapt(["import", adapterFixture("adapterhub_bert"), "--output", backbone])
        #expect(imported.status == 0, "\(imported.error)")
        let adapter = adapterFixture(fixture)
        let texts = ["w1 w2 w3", "w4", "w5 w6 w7 w8", "w9 w1"]
        let result = try runAdapt(["predict", "--backbone", backbone, "--adapter", adapter], input: Data((texts.joined(separator: "\n") + "\n").utf8))
        #expect(result.status == 0, "\(result.error)")
        let lines = try result.output.split(separator: "\n").map { try JSONDecoder().decode(SequenceLine.self, from: Data($0.utf8)) }
        try #require(lines.count == texts.count)
        #expect(try expectAnswers(lines, to: texts, of: try AdaptedModel.load(backbone: backbone, adapter: adapter)) == ["neg", "neu", "pos"])
    }

    @Test func predictLabelsEachWordWithATokenHead() throws {
        let w = try Workspace()
        defer { w.remove() }
        let tags = ["water": "NOUN", "wind": "NOUN", "mawu": "NOUN", "a": "DET", "ndi": "VERB"]
        let words = Array(tags.keys).sorted()
        let sentences = (0..<40).map { i in
            CoNLLUSentence(comments: ["split = \(i < 30 ? "train" : (i < 35 ? "dev" : "test"))"],
                           tokens: (0..<(2 + i % 4)).map { j in
                               let word = words[(i * 3 + j * 2) % words.count]
                               return CoNLLUToken(form: word, upos: tags[word]!)
                           })
        }
        let data = w.directory + "/tags.conllu"
        try CoNLLU.write(sentences, to: data)
        let task = w.directory + "/tagger.h5"
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", data, "--method", "seq_bn", "--steps", "10",
                                  "--batch-size", "8", "--learning-rate", "0.01", "--output", task])
        #expect(train.status == 0, "\(train.error)")
        let result = try runAdapt(["predict", "--backbone", w.backbone, "--adapter", task, "--max-length", "6"],
                                  input: Data("water a ndi\nwater water water water water water\n".utf8))
        #expect(result.status == 0, "\(result.error)")
        struct TokenLine: Decodable { let words: [String]; let labels: [String?] }
        let lines = try result.output.split(separator: "\n").map { try JSONDecoder().decode(TokenLine.self, from: Data($0.utf8)) }
        try #require(lines.count == 2)
        #expect(lines[0].words == ["water", "a", "ndi"] && lines[0].labels.allSatisfy { $0 != nil })
        // Six tokens hold the two framing tokens and at most four words: the rest are cut off.
        #expect(lines[1].words.count == 6 && lines[1].labels.map { $0 != nil } == [true, true, true, true, false, false],
                "\(result.output)")
        let allowed = Set(tags.values)
        #expect(lines.flatMap(\.labels).compactMap { $0 }.allSatisfy(allowed.contains))
    }

    @Test func embedRunsThroughTheAdapters() throws {
        let w = try Workspace()
        defer { w.remove() }
        let (language, task) = try trainStack(w)
        struct EmbeddingLine: Decodable { let ids: [Int]; let embedding: [Float] }
        func embed(_ arguments: [String]) throws -> [[Float]] {
            let result = try runAdapt(["embed", "--backbone", w.backbone] + arguments, input: input)
            #expect(result.status == 0, "\(result.error)")
            return try result.output.split(separator: "\n").map { try JSONDecoder().decode(EmbeddingLine.self, from: Data($0.utf8)).embedding }
        }
        let plain = try embed([]), stacked = try embed(["--adapter", task, "--stack-on", language])
        let expected = try AdaptedModel.load(backbone: w.backbone, adapter: task, stackOn: language).embed(texts).embeddings
        #expect(zip(stacked, expected).allSatisfy { zip($0, $1).allSatisfy { abs($0 - $1) < 1e-5 } })
        #expect(zip(stacked, plain).contains { zip($0, $1).contains { abs($0 - $1) > 1e-3 } })
        // A language adapter alone is a setup too.
        let languageOnly = try embed(["--adapter", language])
        #expect(languageOnly.count == texts.count && languageOnly != plain)
    }

    @Test func misuseIsNamed() throws {
        let w = try Workspace()
        defer { w.remove() }
        let (language, task) = try trainStack(w)
        let base = ["predict", "--backbone", w.backbone]
        for (arguments, message) in [
            (["--adapter", language], "has no classification head to predict with (its head is a masked-LM head"),
            ([String](), "has no classification head to predict with"),
            (["--stack-on", language], "--stack-on needs --adapter"),
            (["--adapter", task, "--top-k", "0"], "--top-k must be positive"),
            (["--adapter", task, "--input", w.directory + "/missing.txt"], "cannot read \(w.directory)/missing.txt"),
        ] {
            let result = try runAdapt(base + arguments, input: input)
            #expect(result.status != 0 && result.error.contains(message), "\(arguments): \(result.error)")
        }
        let invalid = try runAdapt(base + ["--adapter", task], input: Data([0x61, 0x0A, 0xFF, 0xFE, 0x0A]))
        #expect(invalid.status != 0 && invalid.error.contains("line 2 of standard input is not valid UTF-8"), "\(invalid.error)")
        let file = w.directory + "/texts.txt"
        try input.write(to: URL(fileURLWithPath: file))
        let fromFile = try runAdapt(base + ["--adapter", task, "--input", file])
        let fromStandardInput = try runAdapt(base + ["--adapter", task], input: input)
        #expect(fromFile.status == 0 && fromFile.output == fromStandardInput.output)
    }
}
