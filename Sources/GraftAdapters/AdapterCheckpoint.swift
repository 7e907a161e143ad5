import Foundation
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor

/// The kind and labels of the task head stored with an adapter, as the JSON
/// attribute `head_config`: `{"kind": "sequence_classification", "labels": [...], "pooling": "first"}`,
/// with `"hidden_activation": "tanh"` (say) for a classification head with a hidden layer; a head of one
/// linear layer has no such key.
public enum HeadConfiguration: Codable, Sendable, Equatable {
    /// `MaskedLMHead`; its decoder is tied to the backbone's word embeddings.
    case maskedLM
    /// `SequenceClassificationHead`: `labels.count` classes of the sequence summarised by `pooling`; with a
    /// hidden layer (`dense`, then `hiddenActivation`) before the classifier when `hiddenActivation` is given.
    case sequenceClassification(labels: [String], pooling: Pooling, hiddenActivation: Activation? = nil)
    /// `TokenClassificationHead`: `labels.count` classes of each token; with a hidden layer (`dense`, then
    /// `hiddenActivation`) before the classifier when `hiddenActivation` is given.
    case tokenClassification(labels: [String], hiddenActivation: Activation? = nil)

    /// `masked_lm`, `sequence_classification` or `token_classification`.
    public var kind: String {
        switch self {
        case .maskedLM: "masked_lm"
        case .sequenceClassification: "sequence_classification"
        case .tokenClassification: "token_classification"
        }
    }

    /// The class names (none for a masked-LM head).
    public var labels: [String] {
        switch self {
        case .maskedLM: []
        case .sequenceClassification(let labels, _, _), .tokenClassification(let labels, _): labels
        }
    }

    /// The activation of a classification head's hidden layer; nil for a head of one linear layer
    /// (and a masked-LM head).
    public var hiddenActivation: Activation? {
        switch self {
        case .maskedLM: nil
        case .sequenceClassification(_, _, let activation), .tokenClassification(_, let activation): activation
        }
    }

    /// A freshly initialised head of this kind on `backbone` (default dropout).
    public func makeHead(backbone: Backbone, seed: UInt64) -> any Module {
        var generator = SeededGenerator(seed: seed)
        let hidden = backbone.configuration.hiddenSize
        return switch self {
        case .maskedLM: MaskedLMHead(tiedTo: backbone.encoder, untiedDecoder: backbone.maskedLMHead?.untiedDecoder(of: backbone.encoder),
                                     generator: &generator)
        case let .sequenceClassification(labels, pooling, activation):
            SequenceClassificationHead(hiddenSize: hidden, classCount: labels.count, pooling: pooling, hiddenActivation: activation,
                                       generator: &generator)
        case let .tokenClassification(labels, activation):
            TokenClassificationHead(hiddenSize: hidden, classCount: labels.count, hiddenActivation: activation, generator: &generator)
        }
    }

    private enum Key: String, CodingKey { case kind, labels, pooling, hiddenActivation = "hidden_activation" }

    /// Decodes the `head_config` object: `kind`, then `labels`, `pooling` and `hidden_activation` as that kind takes them.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "masked_lm": self = .maskedLM
        case "sequence_classification":
            self = .sequenceClassification(labels: try c.decode([String].self, forKey: .labels),
                                           pooling: try c.decode(Pooling.self, forKey: .pooling),
                                           hiddenActivation: try c.decodeIfPresent(Activation.self, forKey: .hiddenActivation))
        case "token_classification":
            self = .tokenClassification(labels: try c.decode([String].self, forKey: .labels),
                                        hiddenActivation: try c.decodeIfPresent(Activation.self, forKey: .hiddenActivation))
        case let kind:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription:
                "unknown head kind \"\(kind)\"; expected masked_lm, sequence_classification or token_classification")
        }
    }

    /// Encodes the `head_config` object: `kind`, and `labels`, `pooling` and `hidden_activation` where they apply.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(kind, forKey: .kind)
        if self != .maskedLM { try c.encode(labels, forKey: .labels) }
        if case .sequenceClassification(_, let pooling, _) = self { try c.encode(pooling, forKey: .pooling) }
        try c.encodeIfPresent(hiddenActivation, forKey: .hiddenActivation)
    }
}

/// A trained adapter as one HDF5 file: its weights, its configuration, its
/// task head if any, and the identity of the backbone it was trained on
/// (layout: `Docs/file-formats.md`). Loading checks that identity.
public struct AdapterCheckpoint {
    /// The value of the `format` attribute of adapter checkpoints.
    public static let format = "graft-adapter/1"

    /// The adapter's name (attribute `name`; for an AdapterHub or peft directory, the directory's name).
    public var name: String
    /// The method and settings that make the adapter (attribute `adapter_config`).
    public var configuration: AdapterConfiguration
    /// The adapter with its trained weights (datasets under `adapter/`).
    public var adapter: any Adapter
    /// The task head's kind and labels (attribute `head_config`); `nil` without a head.
    public var headConfiguration: HeadConfiguration?
    /// The task head with its trained weights (datasets under `head/`); `nil` without a head.
    public var head: (any Module)?
    /// `Backbone.name` of the backbone the adapter was trained on (attribute `backbone_name`).
    public var backboneName: String
    /// `Backbone.checksum` of the backbone the adapter was trained on.
    public var backboneChecksum: String
    /// The backbone's shape, so that the adapter can be rebuilt without it (`loadAdapter`).
    public var backboneConfiguration: EncoderConfiguration

    /// A checkpoint of `adapter` (made by `configuration`) and `head` (made by
    /// `headConfiguration`) trained on `backbone`.
    ///
    /// - Throws: `AdapterCheckpointError` if the adapter's or the head's
    ///   parameters are not those their configuration makes on this backbone
    ///   (names and shapes), or only one of `head` and `headConfiguration` is given.
    public init(name: String, adapter: any Adapter, configuration: AdapterConfiguration, head: (any Module)? = nil,
                headConfiguration: HeadConfiguration? = nil, backbone: Backbone) throws {
        let source = "adapter \"\(name)\""
        try Self.check(Self.shapes(of: adapter), against: Self.makeAdapter(configuration, model: backbone.configuration, source: source),
                       part: "adapter", source: source)
        switch (head, headConfiguration) {
        case (nil, nil): break
        case let (head?, headConfiguration?):
            try Self.check(Self.shapes(of: head), against: headConfiguration.makeHead(backbone: backbone, seed: 0),
                           part: "head", source: source)
        default:
            throw AdapterCheckpointError.invalid(source: source, detail: "give both a head and its configuration, or neither")
        }
        self.init(name: name, configuration: configuration, adapter: adapter, headConfiguration: headConfiguration, head: head,
                  backboneName: backbone.name, backboneChecksum: backbone.checksum, backboneConfiguration: backbone.configuration)
    }

    private init(name: String, configuration: AdapterConfiguration, adapter: any Adapter, headConfiguration: HeadConfiguration?,
                 head: (any Module)?, backboneName: String, backboneChecksum: String, backboneConfiguration: EncoderConfiguration) {
        self.name = name
        self.configuration = configuration
        self.adapter = adapter
        self.headConfiguration = headConfiguration
        self.head = head
        self.backboneName = backboneName
        self.backboneChecksum = backboneChecksum
        self.backboneConfiguration = backboneConfiguration
    }

    // MARK: Writing

    /// Writes the checkpoint file atomically (a temporary file renamed into place).
    public func save(to path: String) throws {
        try HDF5File.writeAtomically(to: path) { file in
            try write(to: file)
        }
    }

    /// Writes the checkpoint into an open file, in `group` (`"/"`: the root):
    /// weights under `GROUP/adapter/` and `GROUP/head/`, attributes on the group.
    /// Other datasets of the file are left alone (a training checkpoint adds its own).
    public func write(to file: HDF5File, group: String = "/") throws {
        let prefix = Self.prefix(group)
        for (name, parameter) in adapter.namedParameters() { try file.write(parameter.value, at: prefix + "adapter/" + name) }
        for (name, parameter) in head?.namedParameters() ?? [] { try file.write(parameter.value, at: prefix + "head/" + name) }
        let object = prefix.isEmpty ? "/" : String(prefix.dropLast())
        var attributes = [
            "format": Self.format, "name": name, "backbone_name": backboneName, "backbone_checksum": backboneChecksum,
            "adapter_config": try Self.json(configuration), "backbone_config": try Self.json(backboneConfiguration),
        ]
        if let headConfiguration { attributes["head_config"] = try Self.json(headConfiguration) }
        for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(value, named: key, at: object) }
    }

    // MARK: Reading

    /// Loads a checkpoint for `backbone`: a Graft checkpoint file, an AdapterHub
    /// adapter directory (`AdapterHubFormat`, with its prediction head if one was
    /// saved), or a peft LoRA directory (one with `adapter_config.json`).
    ///
    /// A Graft checkpoint must have been trained on this backbone (same
    /// checksum; the names may differ). AdapterHub and peft directories record only
    /// the Hugging Face model they were trained on, which Graft cannot compare with a
    /// backbone file: they are accepted when their shapes fit the backbone, and the
    /// loaded checkpoint takes the backbone's identity.
    /// - Throws: `AdapterCheckpointError` naming the file and what does not match.
    public static func load(from path: String, backbone: Backbone) throws -> AdapterCheckpoint {
        if AdapterHubFormat.isAdapterDirectory(path) {
            let (adapter, configuration) = try AdapterHubFormat.read(directory: path, model: backbone.configuration)
            let head = try AdapterHubFormat.readHead(directory: path, backbone: backbone)
            return try AdapterCheckpoint(name: URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent, adapter: adapter,
                                         configuration: configuration, head: head?.head, headConfiguration: head?.configuration,
                                         backbone: backbone)
        }
        if PeftFormat.isAdapterDirectory(path) {
            let adapter = try PeftFormat.read(directory: path, model: backbone.configuration)
            return try AdapterCheckpoint(name: URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent, adapter: adapter,
                                         configuration: AdapterConfiguration(adapter.configuration), backbone: backbone)
        }
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        return try read(from: file, group: "/", backbone: backbone)
    }

    /// Reads the checkpoint in `group` of an open file for `backbone` (see `load`).
    public static func read(from file: HDF5File, group: String = "/", backbone: Backbone) throws -> AdapterCheckpoint {
        let header = try header(of: file, group: group)
        guard header.backboneChecksum == backbone.checksum else {
            throw AdapterCheckpointError.backboneMismatch(
                source: file.path, trainedOn: header.backboneName, trainedChecksum: header.backboneChecksum,
                given: backbone.name, givenChecksum: backbone.checksum)
        }
        let adapter = try readAdapter(header, from: file, group: group, model: backbone.configuration)
        var head: (any Module)?
        if let headConfiguration = header.headConfiguration {
            head = try readHead(headConfiguration, shapes: header.headShapes, from: file, prefix: prefix(group), backbone: backbone)
        } else if !header.headShapes.isEmpty {
            throw AdapterCheckpointError.unexpectedWeights(source: file.path, part: "head", names: header.headShapes.keys.sorted())
        }
        return AdapterCheckpoint(name: header.name, configuration: header.configuration, adapter: adapter,
                                 headConfiguration: header.headConfiguration, head: head, backboneName: header.backboneName,
                                 backboneChecksum: header.backboneChecksum, backboneConfiguration: header.backboneConfiguration)
    }

    /// What a checkpoint file records besides its weights, read without a backbone.
    public static func header(of path: String) throws -> Header {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        return try header(of: file, group: "/")
    }

    /// The adapter of a checkpoint file, rebuilt for the shape of the backbone
    /// it was trained on, without that backbone, and the head's weights by
    /// parameter name (empty without a head; the head is not rebuilt): for
    /// tools that transform adapters rather than run them (`adapt export`).
    public static func loadAdapter(from path: String) throws -> (header: Header, adapter: any Adapter, headWeights: [String: Tensor]) {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let header = try header(of: file, group: "/")
        let headWeights = try Dictionary(uniqueKeysWithValues: header.headShapes.keys.map { ($0, try file.read("head/" + $0)) })
        return (header, try readAdapter(header, from: file, group: "/", model: header.backboneConfiguration), headWeights)
    }

    /// The attributes of a checkpoint and the shapes of its weights.
    public struct Header: Sendable, Equatable {
        /// The adapter's name (attribute `name`).
        public var name: String
        /// The adapter's method and settings (attribute `adapter_config`).
        public var configuration: AdapterConfiguration
        /// The task head's kind and labels (attribute `head_config`); `nil` without a head.
        public var headConfiguration: HeadConfiguration?
        /// The name of the backbone the adapter was trained on (attribute `backbone_name`).
        public var backboneName: String
        /// The checksum of the backbone the adapter was trained on (attribute `backbone_checksum`).
        public var backboneChecksum: String
        /// The shape of the backbone the adapter was trained on (attribute `backbone_config`).
        public var backboneConfiguration: EncoderConfiguration
        /// Shapes of the stored adapter and head weights, by parameter name.
        public var adapterShapes: [String: [Int]]
        /// Shapes of the stored head weights (under `head/`), by parameter name; empty without a head.
        public var headShapes: [String: [Int]]

        /// The adapter's trainable parameters (scalars).
        public var adapterParameterCount: Int { adapterShapes.values.reduce(0) { $0 + Tensor.count(of: $1) } }
        /// The head's parameters (scalars; a masked-LM head's tied decoder excluded).
        public var headParameterCount: Int { headShapes.values.reduce(0) { $0 + Tensor.count(of: $1) } }

        /// A human-readable description: method, configuration, parameter count, backbone and head.
        public var summary: String {
            let c = backboneConfiguration
            let head = headConfiguration.map { head in
                var text = head.kind
                if !head.labels.isEmpty { text += ", \(head.labels.count) labels: \(head.labels.joined(separator: ", "))" }
                if case .sequenceClassification(_, let pooling, _) = head { text += "; pooling \(pooling.rawValue)" }
                if let activation = head.hiddenActivation { text += "; hidden layer with \(activation.rawValue)" }
                return text + "; \(headParameterCount) parameters"
            } ?? "none"
            return """
                adapter: \(name)
                method: \(configuration.method)
                configuration: \((try? AdapterCheckpoint.json(configuration)) ?? "\(configuration)")
                trainable parameters: \(adapterParameterCount)
                backbone: \(backboneName), checksum \(backboneChecksum) (\(c.modelType) encoder, \(c.layerCount) layers, hidden \(c.hiddenSize))
                head: \(head)
                """
        }
    }

    private static func header(of file: HDF5File, group: String) throws -> Header {
        let prefix = prefix(group), object = prefix.isEmpty ? "/" : String(prefix.dropLast())
        let found = (try? file.attribute(named: "format", at: object)) ?? "none"
        guard found == format else { throw AdapterCheckpointError.notAnAdapter(source: file.path, found: found) }
        func decode<T: Decodable>(_ type: T.Type, _ attribute: String) throws -> T {
            try decodeAttribute(type, attribute, of: file, at: object)
        }
        let attributes = try file.attributeNames(at: object)
        var adapterShapes: [String: [Int]] = [:], headShapes: [String: [Int]] = [:]
        for name in try file.datasetNames() where name.hasPrefix(prefix) {
            let local = name.dropFirst(prefix.count)
            if local.hasPrefix("adapter/") { adapterShapes[String(local.dropFirst(8))] = try file.shape(of: name) }
            if local.hasPrefix("head/") { headShapes[String(local.dropFirst(5))] = try file.shape(of: name) }
        }
        return Header(
            name: try file.attribute(named: "name", at: object),
            configuration: try decode(AdapterConfiguration.self, "adapter_config"),
            headConfiguration: attributes.contains("head_config") ? try decode(HeadConfiguration.self, "head_config") : nil,
            backboneName: try file.attribute(named: "backbone_name", at: object),
            backboneChecksum: try file.attribute(named: "backbone_checksum", at: object),
            backboneConfiguration: try decode(EncoderConfiguration.self, "backbone_config"),
            adapterShapes: adapterShapes, headShapes: headShapes)
    }

    private static func readAdapter(_ header: Header, from file: HDF5File, group: String,
                                    model: EncoderConfiguration) throws -> any Adapter {
        let adapter = try makeAdapter(header.configuration, model: model, source: file.path)
        try check(header.adapterShapes, against: adapter, part: "adapter", source: file.path)
        try adapter.loadParameters { try file.read(prefix(group) + "adapter/" + $0) }
        return adapter
    }

    // MARK: Helpers

    /// The JSON attribute `attribute` of `object` in `file`, decoded as `type`.
    static func decodeAttribute<T: Decodable>(_ type: T.Type, _ attribute: String, of file: HDF5File, at object: String = "/") throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(try file.attribute(named: attribute, at: object).utf8))
        } catch let error as HDF5Error {
            throw error
        } catch {
            throw AdapterCheckpointError.invalid(source: file.path, detail: "attribute \(attribute) cannot be decoded: \(error)")
        }
    }

    /// The head `configuration` makes on `backbone`, with the weights stored under `PREFIXhead/` in
    /// `file`, whose names and shapes (`shapes`) must be exactly the head's.
    static func readHead(_ configuration: HeadConfiguration, shapes: [String: [Int]], from file: HDF5File, prefix: String,
                         backbone: Backbone) throws -> any Module {
        let head = configuration.makeHead(backbone: backbone, seed: 0)
        try check(shapes, against: head, part: "head", source: file.path)
        try head.loadParameters { try file.read(prefix + "head/" + $0) }
        return head
    }

    private static func makeAdapter(_ configuration: AdapterConfiguration, model: EncoderConfiguration,
                                    source: String) throws -> any Adapter {
        do {
            return try configuration.makeAdapter(model: model, seed: 0)
        } catch {
            throw AdapterCheckpointError.invalid(source: source, detail: "\(error)")
        }
    }

    /// Throws unless `found` names exactly the parameters of `expected`, with their shapes.
    static func check(_ found: [String: [Int]], against expected: any Module, part: String, source: String) throws {
        let wanted = shapes(of: expected)
        let missing = wanted.keys.filter { found[$0] == nil }.sorted()
        guard missing.isEmpty else { throw AdapterCheckpointError.missingWeights(source: source, part: part, names: missing) }
        let unexpected = found.keys.filter { wanted[$0] == nil }.sorted()
        guard unexpected.isEmpty else { throw AdapterCheckpointError.unexpectedWeights(source: source, part: part, names: unexpected) }
        for (name, shape) in wanted.sorted(by: { $0.key < $1.key }) where found[name] != shape {
            throw AdapterCheckpointError.shapeMismatch(source: source, name: "\(part)/\(name)", expected: shape, found: found[name]!)
        }
    }

    static func shapes(of module: any Module) -> [String: [Int]] {
        Dictionary(uniqueKeysWithValues: module.namedParameters().map { ($0.name, $0.parameter.value.shape) })
    }

    /// `""` for the root group, else the group's path with one trailing slash.
    private static func prefix(_ group: String) -> String {
        let trimmed = group.split(separator: "/").joined(separator: "/")
        return trimmed.isEmpty ? "" : trimmed + "/"
    }

    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// An adapter checkpoint that cannot be written or loaded. Every case names
/// its source (a file, a directory or an adapter).
public enum AdapterCheckpointError: Error, CustomStringConvertible, Equatable {
    /// The file's `format` attribute is not an adapter checkpoint's; `found` is its value (`"none"` if absent).
    case notAnAdapter(source: String, found: String)
    /// The checkpoint was trained on another backbone: its recorded name and checksum, then the given backbone's.
    case backboneMismatch(source: String, trainedOn: String, trainedChecksum: String, given: String, givenChecksum: String)
    /// Weights of `part` (such as `adapter`, `head` or `LoRA`) that the configuration makes but the source lacks.
    case missingWeights(source: String, part: String, names: [String])
    /// Weights of `part` that the configuration does not make (or a head's weights stored without a head configuration).
    case unexpectedWeights(source: String, part: String, names: [String])
    /// A weight whose shape is not the one the configuration makes.
    case shapeMismatch(source: String, name: String, expected: [Int], found: [Int])
    /// Anything else, described: an undecodable or unsupported setting, a missing weights file, only one of a head
    /// and its configuration.
    case invalid(source: String, detail: String)

    /// A one-line message naming the source and what is wrong.
    public var description: String {
        switch self {
        case let .notAnAdapter(source, found):
            "\(source) is not a Graft adapter checkpoint: expected format attribute \"\(AdapterCheckpoint.format)\", found \"\(found)\""
        case let .backboneMismatch(source, trainedOn, trainedChecksum, given, givenChecksum):
            "\(source) was trained on backbone \"\(trainedOn)\" (checksum \(trainedChecksum)), but the given backbone is \"\(given)\" (checksum \(givenChecksum))"
        case let .missingWeights(source, part, names):
            "\(source) lacks \(names.count) \(part) weights: \(names.prefix(8).joined(separator: ", "))"
        case let .unexpectedWeights(source, part, names):
            "\(source) has \(names.count) unexpected \(part) weights: \(names.prefix(8).joined(separator: ", "))"
        case let .shapeMismatch(source, name, expected, found):
            "\(source): \(name) has shape \(found); expected \(expected)"
        case let .invalid(source, detail):
            "\(source): \(detail)"
        }
    }
}
