import ArgumentParser
import Foundation
import Graft

/// `adapt info FILE.h5`: lists the tensors (name, dtype, shape) and the string
/// attributes (such as the JSON `config`) stored in a Graft HDF5 file.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a Graft HDF5 file: its tensors, shapes, dtypes and stored configuration.")

    @Argument(help: "The HDF5 file to describe (a backbone or an adapter checkpoint).")
    var file: String

    func run() throws {
        let summary = try HDF5File(path: file, mode: .read).summary()
        print(summary)
    }
}
