import Foundation
import GraftFiles
import GraftNN
import GraftTensor
import GraftText

extension Backbone {
    /// Builds a backbone from a Hugging Face model directory: `config.json`,
    /// `model.safetensors` (or the shards `model.safetensors.index.json` lists), and ``tokenizerFile`` (written by
    /// ``exportHuggingFace(to:)``), `tokenizer.json` (WordPiece) or `vocab.txt`.
    ///
    /// Weight names may carry the model's prefix (`bert.`, `roberta.`); task
    /// heads (`cls.*`, `lm_head.*`, `classifier.*`, `pooler` when absent from
    /// the config) and `embeddings.position_ids` are not part of a backbone and
    /// are skipped. Every other tensor must be a parameter of the encoder.
    public static func importHuggingFace(directory: String, name: String? = nil) throws -> Backbone {
        let url = URL(fileURLWithPath: directory)
        func path(_ file: String) -> String { url.appendingPathComponent(file).path }
        guard FileManager.default.fileExists(atPath: path("config.json")) else {
            throw BackboneError.missingFile(directory: directory, file: "config.json")
        }
        let configuration = try decodeJSON(EncoderConfiguration.self, fromFile: path("config.json"))
        let weights = try CheckpointWeights(directory: directory)
        let prefix = ["bert.", "roberta.", "xlm-roberta.", ""].first { prefix in
            weights.tensorNames.contains(prefix + "embeddings.word_embeddings.weight")
        } ?? ""
        let encoder = TransformerEncoder(configuration: configuration,
                                         withPooler: weights.tensorNames.contains(prefix + "pooler.dense.weight"))
        let names = Set(weights.tensorNames)
        try encoder.loadParameters { name in names.contains(prefix + name) ? try weights.tensor(named: prefix + name) : nil }
        let expected = Set(encoder.namedParameters().map { prefix + $0.name })
        let skipped = ["cls.", "lm_head.", "classifier.", "qa_outputs.", prefix + "embeddings.position_ids"]
        let unexpected = weights.tensorNames.filter { name in
            !expected.contains(name) && !skipped.contains { name.hasPrefix($0) }
        }
        guard unexpected.isEmpty else {
            throw BackboneError.unexpectedTensors(file: weights.source, names: unexpected)
        }
        let head = try importedHead(weights, encoder: encoder)
        let tokenizer: any Tokenizer
        if FileManager.default.fileExists(atPath: path(tokenizerFile)) {
            tokenizer = try decodeJSON(TokenizerSpecification.self, fromFile: path(tokenizerFile)).makeTokenizer()
        } else if FileManager.default.fileExists(atPath: path("tokenizer.json")) {
            tokenizer = try WordPieceTokenizer.load(tokenizerJSON: path("tokenizer.json"))
        } else if FileManager.default.fileExists(atPath: path("vocab.txt")) {
            tokenizer = try WordPieceTokenizer.load(vocabularyFile: path("vocab.txt"), lowercase: try lowercases(directory: url))
        } else {
            throw BackboneError.missingFile(directory: directory, file: "\(tokenizerFile), tokenizer.json or vocab.txt")
        }
        return try Backbone(name: name ?? url.standardizedFileURL.lastPathComponent, encoder: encoder, tokenizer: tokenizer,
                            maskedLMHead: head)
    }

    /// The pretrained masked-LM head of a checkpoint, under BERT's names (`cls.predictions.*`) or
    /// RoBERTa / XLM-R's (`lm_head.*`), tied to `encoder`; nil if the checkpoint has none.
    /// - Throws: `BackboneError.unsupportedHead` for a decoder whose weight is not the word embeddings.
    private static func importedHead(_ weights: CheckpointWeights, encoder: TransformerEncoder) throws -> MaskedLMHead? {
        let names = Set(weights.tensorNames)
        let layouts: [(prefix: String, names: [String: String])] = [
            ("cls.predictions.", ["transform.dense.weight": "transform.dense.weight", "transform.dense.bias": "transform.dense.bias",
                                  "transform.LayerNorm.weight": "transform.LayerNorm.weight",
                                  "transform.LayerNorm.bias": "transform.LayerNorm.bias", "bias": "bias"]),
            ("lm_head.", ["transform.dense.weight": "dense.weight", "transform.dense.bias": "dense.bias",
                          "transform.LayerNorm.weight": "layer_norm.weight", "transform.LayerNorm.bias": "layer_norm.bias", "bias": "bias"]),
        ]
        guard let (prefix, mapping) = layouts.first(where: { names.contains($0.prefix + "bias") }) else { return nil }
        let decoder = prefix + "decoder.weight"
        if names.contains(decoder), try weights.tensor(named: decoder) != encoder.embeddings.word.weight.value {
            throw BackboneError.unsupportedHead(file: weights.source, detail:
                "\(decoder) is not the word-embedding table (an untied decoder), which Graft's masked-LM head does not support yet")
        }
        return try pretrainedHead(of: encoder) { name in
            guard let source = mapping[name].map({ prefix + $0 }), names.contains(source) else { return nil }
            return try weights.tensor(named: source)
        }
    }

    /// `do_lower_case` from `tokenizer_config.json` (BERT's default, true, if absent).
    private static func lowercases(directory: URL) throws -> Bool {
        struct TokenizerConfig: Decodable { let do_lower_case: Bool? }
        let url = directory.appendingPathComponent("tokenizer_config.json")
        guard let data = try? Data(contentsOf: url) else { return true }
        return try JSONDecoder().decode(TokenizerConfig.self, from: data).do_lower_case ?? true
    }
}

/// A file of named tensors: safetensors, or a `torch.save` state dict.
public protocol TensorArchive {
    /// Every tensor name, sorted.
    var tensorNames: [String] { get }
    /// The tensor `name`, as `Float32`.
    func tensor(named name: String) throws -> Tensor
}

/// The weights of a Hugging Face model directory: `model.safetensors`, the
/// shards that `model.safetensors.index.json` maps each tensor name to, or
/// `pytorch_model.bin` (read without running its pickle).
struct CheckpointWeights {
    /// The file or index the weights were read from (for messages).
    let source: String
    /// Each tensor's file.
    private let shards: [String: any TensorArchive]

    init(directory: String) throws {
        let url = URL(fileURLWithPath: directory)
        let single = url.appendingPathComponent("model.safetensors").path
        let index = url.appendingPathComponent("model.safetensors.index.json").path
        let torch = url.appendingPathComponent("pytorch_model.bin").path
        for (path, open) in [(single, { try SafetensorsFile(contentsOf: $0) as any TensorArchive }),
                             (torch, { try TorchCheckpointFile(contentsOf: $0) as any TensorArchive })]
        where FileManager.default.fileExists(atPath: path) && (path == single || !FileManager.default.fileExists(atPath: index)) {
            let file = try open(path)
            (source, shards) = (path, Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, file) }))
            return
        }
        guard FileManager.default.fileExists(atPath: index) else {
            throw BackboneError.missingFile(directory: directory, file: "model.safetensors, model.safetensors.index.json or pytorch_model.bin")
        }
        struct Index: Decodable {
            let weightMap: [String: String]
            enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
        }
        let weightMap = try decodeJSON(Index.self, fromFile: index).weightMap
        var files: [String: SafetensorsFile] = [:], shards: [String: any TensorArchive] = [:]
        for shard in Set(weightMap.values).sorted() {
            guard !shard.contains("/"), shard.hasSuffix(".safetensors") else {
                throw JSONDecodingError(source: index, detail: "shard \"\(shard)\" is not a .safetensors file of the directory")
            }
            files[shard] = try SafetensorsFile(contentsOf: url.appendingPathComponent(shard).path)
        }
        for (name, shard) in weightMap {
            guard files[shard]!.tensorNames.contains(name) else {
                throw SafetensorsError.tensorNotFound(file: url.appendingPathComponent(shard).path, tensor: name)
            }
            shards[name] = files[shard]
        }
        let unlisted = files.flatMap { shard, file in file.tensorNames.filter { weightMap[$0] != shard } }.sorted()
        guard unlisted.isEmpty else {
            throw JSONDecodingError(source: index, detail: "the shards hold tensors the index does not map to them: \(unlisted.prefix(5).joined(separator: ", "))")
        }
        (source, self.shards) = (index, shards)
    }

    /// Every tensor name, sorted.
    var tensorNames: [String] { shards.keys.sorted() }

    /// The tensor `name`, as `Float32`.
    func tensor(named name: String) throws -> Tensor {
        guard let shard = shards[name] else { throw SafetensorsError.tensorNotFound(file: source, tensor: name) }
        return try shard.tensor(named: name)
    }
}
