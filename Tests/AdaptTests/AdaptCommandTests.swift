import Foundation
import GraftIO
import GraftTensor
import GraftTestSupport
import Testing

/// The built `adapt` executable, next to the test bundle.
let adaptExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("adapt")

/// Runs the built `adapt` executable (`adaptExecutable`), with `environment` added to this
/// process's, and captures its output; with `outputFile`, standard output goes to that file instead
/// (and `output` is empty).
func runAdapt(_ arguments: [String], input: Data = Data(), outputFile: String? = nil,
              environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = adaptExecutable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let output = Pipe(), error = Pipe(), standardInput = Pipe()
    let file = outputFile.flatMap { FileHandle(forWritingAtPath: $0) }
    process.standardOutput = file ?? output
    process.standardError = error
    process.standardInput = standardInput
    try process.run()
    let err = readInBackground(error.fileHandleForReading)
    try? standardInput.fileHandleForWriting.write(contentsOf: input)
    try standardInput.fileHandleForWriting.close()
    if file != nil { try output.fileHandleForWriting.close() }
    let out = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err(), as: UTF8.self))
}

/// Reads `handle` to its end on a thread of its own, so that a child process never blocks on a
/// full pipe (64 KiB) while the caller reads another; the function returned waits for the end and
/// returns all that was read.
func readInBackground(_ handle: FileHandle) -> @Sendable () -> Data {
    final class Reading: @unchecked Sendable { var data = Data() }
    let reading = Reading(), finished = DispatchSemaphore(value: 0)
    Thread {
        reading.data = handle.readDataToEndOfFile()
        finished.signal()
    }.start()
    return {
        finished.wait()
        return reading.data
    }
}

/// A path in the adapter tests' fixtures (`Tests/GraftAdaptersTests/Fixtures`).
func adapterFixture(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../GraftAdaptersTests/Fixtures")
        .appendingPathComponent(name).standardizedFileURL.path
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

    @Test func infoDescribesABackbone() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyBackbone.make().save(to: path)
        let result = try runAdapt(["info", path])
        #expect(result.status == 0)
        #expect(result.output.contains("architecture: xlm-roberta encoder, 2 layers, hidden 16, 2 heads"))
        #expect(result.output.contains("tokenizer: SentencePiece unigram, 18 ids, pad id 1"))
        #expect(result.output.contains("embeddings.word_embeddings.weight"))
    }

    @Test func embedWritesOneJSONObjectPerInputLine() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let backbone = try TinyBackbone.make()
        try backbone.save(to: path)
        let texts = ["mawu a ndi", " mawu  ", "", "water\twind"]
        let result = try runAdapt(["embed", "--backbone", path], input: Data((texts.joined(separator: "\n") + "\n").utf8))
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n")
        try #require(lines.count == texts.count)
        struct Line: Decodable { let ids: [Int]; let embedding: [Float] }
        let (expectedIDs, expectedEmbeddings) = backbone.embed(texts)
        for (index, line) in lines.enumerated() {
            #expect(line.hasPrefix(#"{"ids":["#))
            let decoded = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
            // Each line is taken exactly as given: no trimming.
            #expect(decoded.ids == expectedIDs[index])
            #expect(zip(decoded.embedding, expectedEmbeddings[index]).allSatisfy { abs($0 - $1) < 1e-6 })
        }
    }

    @Test func embedRejectsInvalidUTF8WithTheLineNumber() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyBackbone.make().save(to: path)
        let result = try runAdapt(["embed", "--backbone", path], input: Data([0x61, 0x0A, 0xC3, 0x28, 0x0A]))
        #expect(result.status != 0)
        #expect(result.error.contains("line 2 of standard input is not valid UTF-8"))
    }

    @Test func importOfAnUnknownSourceFails() throws {
        let result = try runAdapt(["import", "/nonexistent/model", "--output", TinyBackbone.temporaryPath()])
        #expect(result.status != 0)
        #expect(result.error.contains("cannot import /nonexistent/model: no such file or directory"))
    }
}
