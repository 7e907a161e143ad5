import GraftNN
import GraftTensor

extension Module {
    /// Writes every parameter under its dotted name into an HDF5 file
    /// (atomically), with string attributes such as a JSON configuration.
    public func saveWeights(to path: String, attributes: [String: String] = [:]) throws {
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File(path: temporary, mode: .create)
            defer { file.close() }
            for (name, value) in attributes { try file.setAttribute(value, named: name) }
            for (name, parameter) in namedParameters() { try file.write(parameter.value, at: name) }
        }
    }

    /// Reads the parameters written by `saveWeights`; a missing, unexpected or
    /// mis-shaped weight is an error naming it.
    public func loadWeights(from path: String) throws {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let expected = Set(namedParameters().map(\.name))
        let unexpected = try file.datasetNames().filter { !expected.contains($0) }
        guard unexpected.isEmpty else { throw BackboneError.unexpectedTensors(file: path, names: unexpected) }
        try loadParameters { name in file.contains(name) ? try file.read(name) : nil }
    }
}
