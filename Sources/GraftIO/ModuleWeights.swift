import Foundation
import GraftFiles
import GraftNN
import GraftTensor

/// A file of one module's weights with what rebuilds the module: root
/// attributes `format` (`graft-NAME/VERSION`) and `config` (JSON), every
/// parameter under its dotted name, and further named tensors (state that is
/// not a parameter: fixed embeddings, statistics).
public enum WeightsFile {
    /// Writes `module`'s parameters, `tensors` and `configuration` to `path` (atomically).
    public static func write(_ module: any Module, format: String, configuration: some Encodable,
                             tensors: [String: Tensor] = [:], to path: String) throws {
        let json = String(decoding: try JSONEncoder.sorted.encode(configuration), as: UTF8.self)
        try HDF5File.writeAtomically(to: path) { file in
            try file.setAttribute(format, named: "format")
            try file.setAttribute(json, named: "config")
            for (name, parameter) in module.namedParameters() { try file.write(parameter.value, at: name) }
            for (name, tensor) in tensors.sorted(by: { $0.key < $1.key }) { try file.write(tensor, at: name) }
        }
    }

    /// The configuration stored at `path`.
    /// - Throws: `FileContentError` unless the file is of `format` with a readable configuration.
    public static func configuration<Configuration: Decodable>(_ type: Configuration.Type, format: String,
                                                               at path: String) throws -> Configuration {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let found = (try? file.attribute(named: "format")) ?? "none"
        guard found == format else {
            throw FileContentError(source: path, detail: "expected format attribute \"\(format)\", found \"\(found)\"")
        }
        do {
            return try JSONDecoder().decode(type, from: Data(try file.attribute(named: "config").utf8))
        } catch {
            throw FileContentError(source: path, detail: "unreadable config attribute (\(error))")
        }
    }

    /// Reads the parameters of `module` (a freshly made one) from `path` and
    /// returns the further tensors named in `shapes`. A missing, unexpected or
    /// mis-shaped tensor is an error naming it.
    @discardableResult
    public static func read(into module: any Module, from path: String, tensors shapes: [String: [Int]] = [:]) throws -> [String: Tensor] {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let expected = Set(module.namedParameters().map(\.name)).union(shapes.keys)
        let unexpected = try file.datasetNames().filter { !expected.contains($0) }
        guard unexpected.isEmpty else { throw BackboneError.unexpectedTensors(file: path, names: unexpected) }
        var tensors: [String: Tensor] = [:]
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) { tensors[name] = try file.read(name, expectedShape: shape) }
        try module.loadParameters { name in file.contains(name) ? try file.read(name) : nil }
        return tensors
    }
}
