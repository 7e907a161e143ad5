import Foundation
import GraftFiles
import GraftNN
import GraftText

extension Backbone {
    /// The file of a Hugging Face model directory that holds Graft's tokenizer
    /// specification (the backbone file's `tokenizer` attribute): transformers
    /// ignores it, ``importHuggingFace(directory:name:)`` prefers it.
    public static let tokenizerFile = "graft_tokenizer.json"

    /// The files ``exportHuggingFace(to:)`` may write into its directory.
    public static let exportedFiles = ["config.json", "model.safetensors", tokenizerFile, "tokenizer.json"]

    /// Writes the backbone as a Hugging Face model directory that
    /// `transformers.AutoModel.from_pretrained(directory)` loads: `config.json`
    /// (the configuration's keys, `architectures` and `position_embedding_type`),
    /// `model.safetensors` (every weight as F32 under its Hugging Face name,
    /// without a model prefix), and ``tokenizerFile``, with `tokenizer.json` too when the
    /// tokenizer was read from one. Each file is written atomically; the directory is created if needed.
    ///
    /// The weights are exactly the backbone's, so the exported model computes what
    /// the encoder computes: the position table already has Hugging Face's shape
    /// (for XLM-R, rows `0...pad` precede the first real position), and
    /// importing the directory gives a backbone with the same checksum.
    public func exportHuggingFace(to directory: String) throws {
        let url = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        guard var config = try JSONSerialization.jsonObject(with: JSONEncoder.sorted.encode(configuration)) as? [String: Any] else {
            throw ConfigurationError("the configuration does not encode as a JSON object")
        }
        let architecture = ["bert": "BertModel", "roberta": "RobertaModel", "xlm-roberta": "XLMRobertaModel"][configuration.modelType]
        config["architectures"] = architecture.map { [$0] } ?? []
        config["position_embedding_type"] = "absolute"
        config["torch_dtype"] = "float32"
        let json = try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        let tokenizerJSON = try JSONEncoder.sorted.encode(try TokenizerSpecification(tokenizer))
        var files = [("config.json", json), (Backbone.tokenizerFile, tokenizerJSON)]
        if let huggingFace = tokenizer as? HuggingFaceTokenizer { files.append(("tokenizer.json", Data(huggingFace.specification.tokenizerJSON.utf8))) }
        for (file, data) in files {
            try writeAtomically(to: url.appendingPathComponent(file).path) { try data.write(to: URL(fileURLWithPath: $0)) }
        }
        let tensors = Dictionary(uniqueKeysWithValues: encoder.namedParameters().map { ($0.name, $0.parameter.value) })
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: url.appendingPathComponent("model.safetensors").path)
    }
}
