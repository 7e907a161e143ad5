import ArgumentParser
import Foundation
import Graft

/// `adapt merge ADAPTER --backbone B.h5 --output MERGED.h5`: folds a LoRA or MoS adapter into a new backbone file
/// (or, with `--format transformers`, a Hugging Face model directory).
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold a LoRA or MoS adapter into the backbone's weights and write the result as a new backbone file.",
        discussion: """
            ADAPTER is a Graft adapter checkpoint (.h5) trained on the backbone, or a peft LoRA \
            directory. The merged backbone computes what the backbone with the adapter active \
            computed (without the adapter's dropout), with no adapter at run time. It is named \
            BACKBONE+ADAPTER and gets its own checksum. The adapter's head is not part of a backbone \
            and is not written. With --format transformers the merged backbone is written as a \
            Hugging Face model directory instead (as `adapt export --format transformers` writes one).
            """)

    /// Where the merged backbone goes.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case graft, transformers
    }


    @Argument(help: "The adapter: a Graft adapter checkpoint (.h5) or a peft LoRA directory.")
    var adapter: String
    @Option(help: "The backbone file the adapter was trained on.")
    var backbone: String
    @Option(name: .shortAndLong, help: "Where to write the merged backbone: a file (.h5) or, with --format transformers, a directory. Written atomically.")
    var output: String
    @Option(help: "graft (a backbone file) or transformers (a Hugging Face model directory).")
    var format: Format = .graft
    @Option(help: "How to store the weights: float32 (exact) or float16 (half the size).")
    var storage: Import.Storage = .float32

    func run() throws {
        let outputs = format == .graft ? [output] : [output] + Backbone.exportedFiles.map { URL(fileURLWithPath: output).appendingPathComponent($0).path }
        try checkNotOverwritten([backbone, adapter], by: outputs)
        let base = try Backbone.load(from: backbone)
        let checkpoint = try AdapterCheckpoint.load(from: adapter, backbone: base)
        let model = GraftedModel(encoder: base.encoder)
        try model.add(checkpoint.name, checkpoint.adapter)
        let merged = try Backbone(name: "\(base.name)+\(checkpoint.name)", encoder: try model.mergedEncoderCopy([checkpoint.name]),
                                  tokenizer: base.tokenizer)
        switch format {
        case .graft: try merged.save(to: output, storage: storage.type)
        case .transformers: try merged.exportHuggingFace(to: output)
        }
        print(merged.summary)
        print("wrote \(output)")
    }
}
