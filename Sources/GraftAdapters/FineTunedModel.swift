import Foundation
import GraftIO
import GraftNN
import GraftTensor

extension TransformerEncoder {
    /// Makes the encoder trainable for full fine-tuning: every layer, the
    /// position and token-type embeddings and the embeddings' LayerNorm, and the
    /// word-embedding table if `wordEmbeddings`. BERT's pooler, which no task
    /// head reads, stays frozen.
    public func setTrainableForFineTuning(wordEmbeddings: Bool) {
        setTrainable(true)
        embeddings.word.weight.isTrainable = wordEmbeddings
        pooler?.setTrainable(false)
    }
}

/// A backbone fine-tuned as a whole (full fine-tuning, no adapter) with its
/// task head, as one file: a backbone file (`graft-backbone/1`: the trained
/// weights under their Hugging Face names, the tokenizer, a checksum of its
/// own) that also holds the head's weights under `head/` and the attributes
/// `head_config` (as in adapter checkpoints), `fine_tuned_from` and
/// `fine_tuned_from_checksum` (the backbone training started from).
///
/// `Backbone.load` reads such a file as a plain backbone (the head is left
/// out), so adapters can be trained on a fine-tuned model too.
public struct FineTunedModel {
    /// The method name of full fine-tuning (`adapt train --method full`).
    public static let method = "full"

    /// The trained encoder and its tokenizer as a frozen backbone (`NAME+fine-tuned`, the checksum of the trained weights).
    public let backbone: Backbone
    /// The trained task head (datasets under `head/`).
    public let head: any Module
    /// The head's kind and labels (attribute `head_config`).
    public let headConfiguration: HeadConfiguration
    /// The name and checksum of the backbone that fine-tuning started from.
    public let startedFrom: (name: String, checksum: String)

    /// The model whose encoder is `start`'s, after training: a backbone named
    /// `NAME+fine-tuned` with the checksum of the trained weights (its encoder
    /// is frozen again), and `head`.
    /// - Throws: `AdapterCheckpointError` if `head` is not what `headConfiguration` makes.
    public init(trained start: Backbone, head: any Module, headConfiguration: HeadConfiguration) throws {
        try AdapterCheckpoint.check(AdapterCheckpoint.shapes(of: head), against: headConfiguration.makeHead(backbone: start, seed: 0),
                                    part: "head", source: "the fine-tuned model")
        backbone = try Backbone(name: start.name + "+fine-tuned", encoder: start.encoder, tokenizer: start.tokenizer)
        self.head = head
        self.headConfiguration = headConfiguration
        startedFrom = (start.name, start.checksum)
    }

    private init(backbone: Backbone, head: any Module, headConfiguration: HeadConfiguration, startedFrom: (String, String)) {
        self.backbone = backbone
        self.head = head
        self.headConfiguration = headConfiguration
        self.startedFrom = startedFrom
    }

    /// The backbone's description, where it was fine-tuned from, and its head.
    public var summary: String {
        let labels = headConfiguration.labels
        return backbone.summary + """

            fine-tuned from: \(startedFrom.name), checksum \(startedFrom.checksum)
            head: \(headConfiguration.kind)\(labels.isEmpty ? "" : ", \(labels.count) labels: \(labels.joined(separator: ", "))"); \
            \(head.namedParameters().reduce(0) { $0 + $1.parameter.value.count }) parameters
            """
    }

    /// Writes the model file atomically (a temporary file renamed into place).
    public func save(to path: String) throws {
        try backbone.save(to: path) { file in
            for (name, parameter) in head.namedParameters() { try file.write(parameter.value, at: "head/" + name) }
            try file.setAttribute(try AdapterCheckpoint.json(headConfiguration), named: "head_config")
            try file.setAttribute(startedFrom.name, named: "fine_tuned_from")
            try file.setAttribute(startedFrom.checksum, named: "fine_tuned_from_checksum")
        }
    }

    /// Loads a file written by `save`.
    /// - Throws: `AdapterCheckpointError` if the file is a backbone without a head, or its head does not fit.
    public static func load(from path: String) throws -> FineTunedModel {
        let (_, fineTuned) = try loadBackbone(from: path)
        guard let fineTuned else {
            throw AdapterCheckpointError.invalid(
                source: path, detail: "it is a backbone without a task head (a fully fine-tuned model, made by `adapt train --method full`, has one)")
        }
        return fineTuned
    }

    /// Loads a backbone file, with its head when it is a fully fine-tuned model
    /// (`fineTuned` is `nil` for a plain backbone).
    public static func loadBackbone(from path: String) throws -> (backbone: Backbone, fineTuned: FineTunedModel?) {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let backbone = try Backbone.read(from: file)
        guard try file.attributeNames(at: "/").contains("head_config") else { return (backbone, nil) }
        let headConfiguration = try AdapterCheckpoint.decodeAttribute(HeadConfiguration.self, "head_config", of: file)
        var stored: [String: [Int]] = [:]
        for name in try file.datasetNames() where name.hasPrefix("head/") { stored[String(name.dropFirst(5))] = try file.shape(of: name) }
        let head = try AdapterCheckpoint.readHead(headConfiguration, shapes: stored, from: file, prefix: "", backbone: backbone)
        let startedFrom = (try file.attribute(named: "fine_tuned_from"), try file.attribute(named: "fine_tuned_from_checksum"))
        return (backbone, FineTunedModel(backbone: backbone, head: head, headConfiguration: headConfiguration, startedFrom: startedFrom))
    }
}
