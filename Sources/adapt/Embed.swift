import ArgumentParser
import Foundation
import Graft

/// `adapt embed --backbone FILE.h5`: sentence embeddings of standard-input lines.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed each line of standard input; write one JSON object per line to standard output.",
        discussion: """
            Each line (UTF-8, split on \\n) is one text, taken exactly as given: nothing is trimmed \
            and no "query: " / "passage: " prefix is added. Output: {"ids": [token ids including \
            special tokens], "embedding": [mean over the text's tokens, L2-normalised]}.
            """)

    @Option(help: "The backbone file (made by `adapt import`).")
    var backbone: String

    @Option(help: "Truncate texts to this many tokens (default: the model's maximum).")
    var maxLength: Int?

    @Option(help: "Texts per forward pass.")
    var batchSize: Int = 32

    func validate() throws {
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2, got \(maxLength)") }
    }

    func run() throws {
        let model = try Backbone.load(from: backbone)
        let texts = try readLines(FileHandle.standardInput.readDataToEndOfFile())
        let (ids, embeddings) = model.embed(texts, maxLength: maxLength, batchSize: batchSize)
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

/// Splits input on `\n` into UTF-8 texts; a final newline does not start an extra text.
func readLines(_ data: Data) throws -> [String] {
    var lines = data.split(separator: 0x0A, omittingEmptySubsequences: false)
    if data.last == 0x0A || data.isEmpty { lines.removeLast() }
    return try lines.enumerated().map { number, bytes in
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CommandError("line \(number + 1) of standard input is not valid UTF-8")
        }
        return text
    }
}
