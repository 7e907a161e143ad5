import ArgumentParser
import Foundation
import Graft

/// `adapt merge ADAPTER --backbone B.h5 --output MERGED.h5`: folds a LoRA or MoS adapter into a new backbone file.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold a LoRA or MoS adapter into the backbone's weights and write the result as a new backbone file.",
        discussion: """
            ADAPTER is a Graft adapter checkpoint (.h5) trained on the backbone, or a peft LoRA \
            directory. The merged backbone computes what the backbone with the adapter active \
            computed (without the adapter's dropout), with no adapter at run time. It is named \
            BACKBONE+ADAPTER and gets its own checksum. The adapter's head is not part of a backbone \
            and is not written.
            """)

    @Argument(help: "The adapter: a Graft adapter checkpoint (.h5) or a peft LoRA directory.")
    var adapter: String
    @Option(help: "The backbone file the adapter was trained on.")
    var backbone: String
    @Option(name: .shortAndLong, help: "Where to write the merged backbone file (.h5). Written atomically.")
    var output: String
    @Option(help: "How to store the weights: float32 (exact) or float16 (half the size).")
    var storage: Import.Storage = .float32

    func run() throws {
        try checkNotOverwritten([backbone, adapter], by: [output])
        let base = try Backbone.load(from: backbone)
        let checkpoint = try AdapterCheckpoint.load(from: adapter, backbone: base)
        let model = GraftedModel(encoder: base.encoder)
        try model.add(checkpoint.name, checkpoint.adapter)
        let merged = try Backbone(name: "\(base.name)+\(checkpoint.name)", encoder: try model.mergedEncoderCopy([checkpoint.name]),
                                  tokenizer: base.tokenizer)
        try merged.save(to: output, storage: storage.type)
        print(merged.summary)
        print("wrote \(output)")
    }
}
