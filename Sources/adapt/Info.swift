import ArgumentParser
import Foundation
import Graft

/// `adapt info FILE.h5`: describes a Graft HDF5 file: for a backbone its
/// architecture, sizes, tokenizer and parameter count; for any file its tensors
/// (name, dtype, shape) and string attributes such as the JSON `config`.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a Graft HDF5 file: architecture, tokenizer, tensors, shapes, dtypes and stored configuration.")

    @Argument(help: "The HDF5 file to describe (a backbone or an adapter checkpoint).")
    var file: String

    func run() throws {
        let summary = try HDF5File(path: file, mode: .read).summary()
        if summary.attributes["format"] == Backbone.format {
            print(summary.attributes["head_config"] == nil ? try Backbone.load(from: file).summary : try FineTunedModel.load(from: file).summary)
        }
        if summary.attributes["format"] == AdapterCheckpoint.format {
            print(try AdapterCheckpoint.header(of: file).summary)
        }
        print(summary)
    }
}
