import ArgumentParser
import Foundation
import Graft

/// `adapt embed --backbone FILE.h5 [--adapter A.h5 [--stack-on L.h5]]`: sentence embeddings of input lines.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed each input line (through any adapters); write one JSON object per line to standard output.",
        discussion: """
            Each line (UTF-8, split on \\n) is one text, taken exactly as given: nothing is trimmed \
            and no "query: " / "passage: " prefix is added. Output: {"ids": [token ids including \
            special tokens], "embedding": [mean over the text's tokens, L2-normalised]}. With --adapter \
            (and --stack-on), the embedding is the adapted model's: a language adapter alone, a task \
            adapter, or Stack(language, task); the adapter's head is not used.
            """)

    @OptionGroup var model: ModelOptions
    @OptionGroup var input: InputOption

    @Option(help: "Truncate texts to this many tokens (default: the model's maximum).")
    var maxLength: Int?

    @Option(help: "Texts per forward pass.")
    var batchSize: Int = 32

    @OptionGroup var threads: ThreadsOption

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2, got \(maxLength)") }
    }

    func run() throws {
        try threads.apply()
        let loaded = try model.load()
        let texts = try input.texts()
        let (ids, embeddings) = loaded.embed(texts, maxLength: maxLength, batchSize: batchSize)
        let encoder = JSONEncoder()
        var output = Data()
        for (row, vector) in zip(ids, embeddings) {
            // Written by hand so that "ids" comes first, as documented.
            output += Data(#"{"ids":"#.utf8) + (try encoder.encode(row))
            output += Data(#","embedding":"#.utf8) + (try encoder.encode(vector)) + Data("}\n".utf8)
        }
        try write(output, to: FileHandle.standardOutput, name: "standard output")
    }
}

/// `--input FILE`: the texts of a command, one per line; standard input without it.
struct InputOption: ParsableArguments {
    @Option(help: "Read the texts from this file, one per line (default: standard input).") var input: String?

    /// The lines of the input (UTF-8, split on `\n`; a final newline does not start an extra text).
    func texts() throws -> [String] {
        guard let input else { return try readLines(FileHandle.standardInput.readDataToEndOfFile(), name: "standard input") }
        guard let data = FileManager.default.contents(atPath: input) else { throw CommandError("cannot read \(input)") }
        return try readLines(data, name: input)
    }
}

/// Splits `data` (named `name` in errors) on `\n` into UTF-8 texts; a final newline does not start an extra text.
func readLines(_ data: Data, name: String) throws -> [String] {
    var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
    if data.last == 0x0A || data.isEmpty { lines.removeLast() }
    return try lines.enumerated().map { number, bytes in
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CommandError("line \(number + 1) of \(name) is not valid UTF-8")
        }
        return text
    }
}
