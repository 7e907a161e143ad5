import Foundation
import GraftFiles
import GraftNN
import GraftTensor
import GraftText

extension Backbone {
    /// Builds a backbone from a Hugging Face model directory: `config.json`,
    /// `model.safetensors`, and ``tokenizerFile`` (written by
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
        guard FileManager.default.fileExists(atPath: path("model.safetensors")) else {
            throw BackboneError.missingFile(directory: directory, file: "model.safetensors")
        }
        let configuration = try decodeJSON(EncoderConfiguration.self, fromFile: path("config.json"))
        let weights = try SafetensorsFile(contentsOf: path("model.safetensors"))
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
            throw BackboneError.unexpectedTensors(file: path("model.safetensors"), names: unexpected)
        }
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
        return try Backbone(name: name ?? url.standardizedFileURL.lastPathComponent, encoder: encoder, tokenizer: tokenizer)
    }

    /// `do_lower_case` from `tokenizer_config.json` (BERT's default, true, if absent).
    private static func lowercases(directory: URL) throws -> Bool {
        struct TokenizerConfig: Decodable { let do_lower_case: Bool? }
        let url = directory.appendingPathComponent("tokenizer_config.json")
        guard let data = try? Data(contentsOf: url) else { return true }
        return try JSONDecoder().decode(TokenizerConfig.self, from: data).do_lower_case ?? true
    }
}
