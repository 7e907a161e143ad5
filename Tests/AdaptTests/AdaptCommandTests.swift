import Foundation
import GraftIO
import GraftTensor
import Testing

/// Runs the built `adapt` executable (next to the test bundle) and captures its output.
func runAdapt(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let process = Process()
    process.executableURL = directory.appendingPathComponent("adapt")
    process.arguments = arguments
    let output = Pipe(), error = Pipe()
    process.standardOutput = output
    process.standardError = error
    try process.run()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = error.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}

@Suite struct AdaptCommand {
    @Test func versionIsPrinted() throws {
        let result = try runAdapt(["--version"])
        #expect(result.status == 0)
        #expect(result.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").count == 3)
    }

    @Test func infoListsTensorsShapesTypesAndConfig() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("adapt-info-\(UUID().uuidString).h5").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            let file = try HDF5File(path: path, mode: .create)
            try file.write(Tensor(zeros: [3, 4]), at: "encoder.layer.0.attention.self.query.weight")
            try file.write(Tensor(zeros: [4]), at: "head/bias", as: .float16)
            try file.setAttribute(#"{"hidden_size": 4}"#, named: "config")
        }
        let result = try runAdapt(["info", path])
        #expect(result.status == 0)
        #expect(result.output.contains("encoder.layer.0.attention.self.query.weight  float32  [3, 4]"))
        #expect(result.output.contains("head/bias"))
        #expect(result.output.contains("float16"))
        #expect(result.output.contains(#"@config = {"hidden_size": 4}"#))
    }

    @Test func infoOnAMissingFileFailsWithTheFileName() throws {
        let result = try runAdapt(["info", "/nonexistent/model.h5"])
        #expect(result.status != 0)
        #expect(result.error.contains("/nonexistent/model.h5"))
    }
}
