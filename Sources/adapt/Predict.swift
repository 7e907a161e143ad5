import ArgumentParser
import Foundation
import Graft

/// `adapt predict`: labels for new texts from a trained task adapter (or a fully fine-tuned model).
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Label each input line with a trained task adapter; write one JSON object per line to standard output.",
        discussion: """
            Each line (UTF-8, split on \\n) is one text. A sequence classification head answers \
            {"label": L, "probabilities": {label: p, ...}} (all labels, or the --top-k most probable); a \
            token classification head splits the line on white space and answers {"words": [...], \
            "labels": [...]}, one label per word (null for words cut off by --max-length). With --stack-on, \
            the task adapter runs on the language adapter: Stack(language, task).
            """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var input: InputOption
    @Option(help: "Report only the k most probable labels' probabilities.") var topK: Int?
    @Option(help: "Tokens per text (default 128).") var maxLength = 128
    @Option(help: "Texts per forward pass.") var batchSize = 32
    @OptionGroup var threads: ThreadsOption

    func validate() throws {
        try checkPositive(["--top-k": topK, "--batch-size": batchSize])
        guard maxLength >= 4 else { throw ValidationError("--max-length must be at least 4, got \(maxLength)") }
    }

    func run() throws {
        try threads.apply()
        let loaded = try model.load()
        guard let classifier = loaded.classifier else {
            throw CommandError("\(model.adapter ?? model.backbone) has no classification head to predict with"
                               + (loaded.head == nil ? "" : " (its head is a masked-LM head: use `adapt eval` or `adapt embed`)"))
        }
        let texts = try input.texts()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var output = Data()
        if classifier.kind == .sequence {
            let ids = texts.map { loaded.backbone.tokenizer.encode($0, maxLength: maxLength) }
            for rows in classifier.probabilities(ids, batchSize: batchSize) {
                output += try encoder.encode(SequencePrediction(probabilities: rows[0], labels: classifier.labels, topK: topK)) + Data("\n".utf8)
            }
        } else {
            let frames = texts.map { TokenPrediction.frame($0, tokenizer: loaded.backbone.tokenizer, maxLength: maxLength) }
            for (frame, rows) in zip(frames, classifier.probabilities(frames.map(\.example.ids), batchSize: batchSize)) {
                let prediction = TokenPrediction(words: frame.words, example: frame.example, labels: classifier.labels) { position in
                    rows[position].indices.max { rows[position][$0] < rows[position][$1] }!
                }
                output += try encoder.encode(prediction) + Data("\n".utf8)
            }
        }
        try write(output, to: FileHandle.standardOutput, name: "standard output")
    }
}
