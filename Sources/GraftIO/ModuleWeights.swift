import GraftFiles
import GraftNN
import GraftTensor

extension Module {
    /// Writes every parameter under its dotted name into an HDF5 file
    /// (atomically), with string attributes such as a JSON configuration and
    /// `tensors`, state that is not a parameter (fixed embeddings, statistics).
    public func saveWeights(to path: String, attributes: [String: String] = [:], tensors: [String: Tensor] = [:]) throws {
        try HDF5File.writeAtomically(to: path) { file in
            for (name, value) in attributes { try file.setAttribute(value, named: name) }
            for (name, parameter) in namedParameters() { try file.write(parameter.value, at: name) }
            for (name, tensor) in tensors { try file.write(tensor, at: name) }
        }
    }

    /// Reads the parameters written by `saveWeights`, and returns the further
    /// tensors named in `tensors` (with their expected shapes). A missing,
    /// unexpected or mis-shaped tensor is an error naming it; the further
    /// tensors are checked before any parameter changes.
    @discardableResult
    public func loadWeights(from path: String, tensors shapes: [String: [Int]] = [:]) throws -> [String: Tensor] {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let expected = Set(namedParameters().map(\.name)).union(shapes.keys)
        let unexpected = try file.datasetNames().filter { !expected.contains($0) }
        guard unexpected.isEmpty else { throw BackboneError.unexpectedTensors(file: path, names: unexpected) }
        var tensors: [String: Tensor] = [:]
        for (name, shape) in shapes.sorted(by: { $0.key < $1.key }) { tensors[name] = try file.read(name, expectedShape: shape) }
        try loadParameters { name in file.contains(name) ? try file.read(name) : nil }
        return tensors
    }
}
