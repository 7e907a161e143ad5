import Foundation
import GraftIO
import GraftTensor
import Testing

/// safetensors headers are checked against the data they describe.
@Suite struct SafetensorsFiles {
    /// A file of `header` (JSON) followed by `dataBytes` zero bytes.
    func file(_ header: String, dataBytes: Int) throws -> String {
        let path = NSTemporaryDirectory() + "graft-\(UUID().uuidString).safetensors"
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(count: dataBytes))
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func writtenFilesReadBack() throws {
        let path = NSTemporaryDirectory() + "graft-\(UUID().uuidString).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let tensors = ["a": Tensor(shape: [2], scalars: [1, 2]), "b": Tensor(shape: [1, 3], scalars: [3, 4, 5])]
        try SafetensorsFile.write(tensors, to: path)
        let file = try SafetensorsFile(contentsOf: path)
        #expect(try file.tensor(named: "a") == tensors["a"]! && file.tensor(named: "b") == tensors["b"]!)
    }

    @Test(arguments: [
        // Two names aliasing one buffer.
        (#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, 8, "overlaps"),
        // A hole between the tensors.
        (#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#, 12, "gap"),
        // Data that belongs to no tensor.
        (#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#, 16, "belong to no tensor"),
    ])
    func offsetsMustTileTheData(header: String, dataBytes: Int, message: String) throws {
        let path = try file(header, dataBytes: dataBytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = try #require(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: path) }
        #expect(error.description.contains(message), "\(error)")
    }
}
