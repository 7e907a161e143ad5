import Foundation
import GraftFiles
import GraftNN
import GraftTensor
import GraftText

extension Backbone {
    /// Builds a backbone from a Hugging Face model directory: `config.json`,
    /// `model.safetensors` (or the shards `model.safetensors.index.json` lists), and the first tokenizer of:
    /// ``tokenizerFile`` (written by ``exportHuggingFace(to:)``), `tokenizer.json` (WordPiece, SentencePiece
    /// unigram or byte-level BPE), `sentencepiece.bpe.model` (XLM-R's ids, as transformers converts it), `vocab.txt`.
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
        let (configuration, isDistilBERT) = try encoderConfiguration(path("config.json"))
        let weights = try CheckpointWeights(directory: directory)
        let names = Set(weights.tensorNames)
        let prefix = ["bert.", "roberta.", "xlm-roberta.", "distilbert.", ""].first { prefix in
            names.contains(prefix + "embeddings.word_embeddings.weight")
        } ?? ""
        // The checkpoint's name of each encoder weight; DistilBERT has BERT's layers under other names and no token types.
        let source = { (name: String) -> String? in isDistilBERT ? distilBERTName(name).map { prefix + $0 } : prefix + name }
        let encoder = TransformerEncoder(configuration: configuration, withPooler: names.contains(prefix + "pooler.dense.weight"))
        try encoder.loadParameters { name in
            guard let checkpointName = source(name) else { return Tensor(zeros: [configuration.typeVocabularySize, configuration.hiddenSize]) }
            return names.contains(checkpointName) ? try weights.tensor(named: checkpointName) : nil
        }
        let expected = Set(encoder.namedParameters().compactMap { source($0.name) })
        let skipped = ["cls.", "lm_head.", "classifier.", "qa_outputs.", "pre_classifier.", "vocab_", prefix + "embeddings.position_ids"]
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
            tokenizer = try loadTokenizer(tokenizerJSON: path("tokenizer.json"))
        } else if FileManager.default.fileExists(atPath: path("sentencepiece.bpe.model")) {
            let model = try SentencePieceModel(contentsOf: path("sentencepiece.bpe.model"))
            tokenizer = try HuggingFaceTokenizer(.init(tokenizerJSON: try model.xlmRobertaTokenizerJSON()))
        } else if FileManager.default.fileExists(atPath: path("vocab.txt")) {
            tokenizer = try WordPieceTokenizer.load(vocabularyFile: path("vocab.txt"), lowercase: try lowercases(directory: url))
        } else {
            throw BackboneError.missingFile(directory: directory, file: "\(tokenizerFile), tokenizer.json, sentencepiece.bpe.model or vocab.txt")
        }
        let kind = isDistilBERT ? "distilbert" : configuration.modelType
        return try Backbone(name: name ?? url.standardizedFileURL.lastPathComponent, encoder: encoder, tokenizer: tokenizer,
                            maskedLMHead: head,
                            source: "Hugging Face directory \(url.standardizedFileURL.path) (\(kind), \(URL(fileURLWithPath: weights.source).lastPathComponent))")
    }

    /// The pretrained masked-LM head of a checkpoint, under BERT's names (`cls.predictions.*`) or
    /// RoBERTa / XLM-R's (`lm_head.*`) or DistilBERT's (`vocab_*`), its decoder tied to `encoder`'s word
    /// embeddings or, when the checkpoint stores another table, that table; nil if the checkpoint has none.
    private static func importedHead(_ weights: CheckpointWeights, encoder: TransformerEncoder) throws -> MaskedLMHead? {
        let names = Set(weights.tensorNames)
        let layouts: [(marker: String, names: [String: String], decoder: String)] = [
            ("cls.predictions.bias", ["transform.dense.weight": "cls.predictions.transform.dense.weight",
                                      "transform.dense.bias": "cls.predictions.transform.dense.bias",
                                      "transform.LayerNorm.weight": "cls.predictions.transform.LayerNorm.weight",
                                      "transform.LayerNorm.bias": "cls.predictions.transform.LayerNorm.bias", "bias": "cls.predictions.bias"],
             "cls.predictions.decoder.weight"),
            ("lm_head.bias", ["transform.dense.weight": "lm_head.dense.weight", "transform.dense.bias": "lm_head.dense.bias",
                              "transform.LayerNorm.weight": "lm_head.layer_norm.weight", "transform.LayerNorm.bias": "lm_head.layer_norm.bias",
                              "bias": "lm_head.bias"],
             "lm_head.decoder.weight"),
            ("vocab_projector.bias", ["transform.dense.weight": "vocab_transform.weight", "transform.dense.bias": "vocab_transform.bias",
                                      "transform.LayerNorm.weight": "vocab_layer_norm.weight", "transform.LayerNorm.bias": "vocab_layer_norm.bias",
                                      "bias": "vocab_projector.bias"],
             "vocab_projector.weight"),
        ]
        guard let (_, mapping, decoder) = layouts.first(where: { names.contains($0.marker) }) else { return nil }
        // A stored decoder equal to the word embeddings is the tied table saved twice; any other is the head's own.
        let untied = names.contains(decoder) ? try weights.tensor(named: decoder) : nil
        let ownDecoder = untied.flatMap { $0 == encoder.embeddings.word.weight.value ? nil : $0 }
        return try pretrainedHead(of: encoder, in: weights.source) { name in
            if name == "decoder.weight" { return ownDecoder }
            guard let source = mapping[name], names.contains(source) else { return nil }
            return try weights.tensor(named: source)
        }
    }

    /// The encoder's shape from `config.json`. DistilBERT's (`dim`, `n_layers`, ...) becomes the BERT
    /// encoder it is (one token type, whose embedding is zero; LayerNorm epsilon 1e-12).
    private static func encoderConfiguration(_ path: String) throws -> (EncoderConfiguration, isDistilBERT: Bool) {
        struct ModelType: Decodable { let model_type: String? }
        struct DistilBERT: Decodable {
            let vocab_size: Int, dim: Int, n_layers: Int, n_heads: Int, hidden_dim: Int
            let max_position_embeddings: Int?, pad_token_id: Int?, dropout: Float?, attention_dropout: Float?, activation: String?
        }
        guard try decodeJSON(ModelType.self, fromFile: path).model_type == "distilbert" else {
            return (try decodeJSON(EncoderConfiguration.self, fromFile: path), false)
        }
        let c = try decodeJSON(DistilBERT.self, fromFile: path)
        let configuration = EncoderConfiguration(
            modelType: "bert", vocabularySize: c.vocab_size, hiddenSize: c.dim, layerCount: c.n_layers, headCount: c.n_heads,
            intermediateSize: c.hidden_dim, maxPositions: c.max_position_embeddings ?? 512, typeVocabularySize: 1,
            layerNormEpsilon: 1e-12, padTokenID: c.pad_token_id ?? 0, hiddenDropout: c.dropout ?? 0.1,
            attentionDropout: c.attention_dropout ?? 0.1, hiddenActivation: c.activation ?? "gelu")
        do { try configuration.validate() } catch { throw FileContentError(source: path, detail: "\(error)") }
        return (configuration, true)
    }

    /// DistilBERT's name of the BERT encoder weight `name`; nil for the token-type table DistilBERT lacks.
    static func distilBERTName(_ name: String) -> String? {
        guard name != "embeddings.token_type_embeddings.weight" else { return nil }
        guard name.hasPrefix("encoder.layer.") else { return name }
        let renames = [("attention.self.query", "attention.q_lin"), ("attention.self.key", "attention.k_lin"),
                       ("attention.self.value", "attention.v_lin"), ("attention.output.dense", "attention.out_lin"),
                       ("attention.output.LayerNorm", "sa_layer_norm"), ("intermediate.dense", "ffn.lin1"),
                       ("output.dense", "ffn.lin2"), ("output.LayerNorm", "output_layer_norm")]
        var renamed = "transformer.layer." + name.dropFirst("encoder.layer.".count)
        if let (from, to) = renames.first(where: { renamed.contains("." + $0.0 + ".") }) {
            renamed = renamed.replacingOccurrences(of: "." + from + ".", with: "." + to + ".")
        }
        return renamed
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

/// The tensor file at `path`: a `torch.save` state dict for `.bin`, safetensors otherwise.
public func tensorArchive(at path: String) throws -> any TensorArchive {
    path.hasSuffix(".bin") ? try TorchCheckpointFile(contentsOf: path) : try SafetensorsFile(contentsOf: path)
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
        let exists = { FileManager.default.fileExists(atPath: $0) }
        guard exists(index) && !exists(single) else {
            guard let path = [single, torch].first(where: exists) else {
                throw BackboneError.missingFile(directory: directory, file: "model.safetensors, model.safetensors.index.json or pytorch_model.bin")
            }
            let file = try tensorArchive(at: path)
            (source, shards) = (path, Dictionary(uniqueKeysWithValues: file.tensorNames.map { ($0, file) }))
            return
        }
        struct Index: Decodable {
            let weightMap: [String: String]
            enum CodingKeys: String, CodingKey { case weightMap = "weight_map" }
        }
        let weightMap = try decodeJSON(Index.self, fromFile: index).weightMap
        var files: [String: SafetensorsFile] = [:], shards: [String: any TensorArchive] = [:]
        for shard in Set(weightMap.values).sorted() {
            guard !shard.contains("/"), shard.hasSuffix(".safetensors") else {
                throw FileContentError(source: index, detail: "shard \"\(shard)\" is not a .safetensors file of the directory")
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
            throw FileContentError(source: index, detail: "the shards hold tensors the index does not map to them: \(unlisted.prefix(5).joined(separator: ", "))")
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
