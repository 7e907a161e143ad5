import Foundation
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor

/// Adapters and prediction heads saved by AdapterHub `adapters` (`model.save_adapter(DIR, NAME, with_head=True)`):
/// a directory of `adapter_config.json` and `pytorch_adapter.bin` (or `adapter.safetensors`), with
/// `head_config.json` and `pytorch_model_head.bin` (or `model_head.safetensors`) when a head was saved, as
/// AdapterHub's hub and MAD-X language adapters are shipped. Graft reads and writes the bottleneck
/// architectures (seq_bn, double_seq_bn, par_bn and their invertible forms), LoRA, and one-layer
/// classification and tagging heads.
public enum AdapterHubFormat {
    /// The adapter's configuration file.
    public static let configurationFile = "adapter_config.json"
    /// The weights file `save_adapter` writes (a `torch.save` state dict), and its safetensors form
    /// (`save_adapter(..., use_safetensors=True)`, which is what `write` produces).
    public static let weightsFiles = ["pytorch_adapter.bin", "adapter.safetensors"]
    /// The head's configuration file.
    public static let headConfigurationFile = "head_config.json"
    /// The head's weights file, as `torch.save` writes it and in safetensors (what `writeHead` produces).
    public static let headWeightsFiles = ["pytorch_model_head.bin", "model_head.safetensors"]

    /// Whether `path` is an AdapterHub adapter directory (its configuration has AdapterHub's `config` object).
    public static func isAdapterDirectory(_ path: String) -> Bool {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: url.appendingPathComponent(configurationFile).path),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return false }
        return object["config"] is [String: Any]
    }

    /// The AdapterHub placement flags each of Graft's bottleneck placements corresponds to.
    static let placements: [(placement: BottleneckConfiguration.Placement, flags: [String: Bool])] = [
        (.sequential, ["mh_adapter": false, "output_adapter": true, "is_parallel": false, "original_ln_before": true,
                       "original_ln_after": true, "residual_before_ln": true]),
        (.double, ["mh_adapter": true, "output_adapter": true, "is_parallel": false, "original_ln_before": false,
                   "original_ln_after": true, "residual_before_ln": true]),
        (.parallel, ["mh_adapter": false, "output_adapter": true, "is_parallel": true, "original_ln_before": false,
                     "original_ln_after": true, "residual_before_ln": true]),
    ]

    /// Settings that would change what the adapter computes and that Graft has no form for: each must be off.
    static let offSettings = ["ln_before", "ln_after", "adapter_residual_before_ln", "use_gating", "phm_layer", "cross_adapter"]

    /// The self-attention matrices of AdapterHub's LoRA `attn_matrices`, in Graft's slots.
    static let attentionMatrices: [(name: String, slot: LinearSlot)] = [("q", .query), ("k", .key), ("v", .value)]

    /// Reads the adapter in `directory` for a model of shape `model`: a bottleneck adapter, or LoRA
    /// (`"architecture": "lora"`), with the configuration that makes it.
    /// - Throws: `AdapterCheckpointError` naming a setting Graft cannot honour, or a missing,
    ///   unexpected or mis-shaped weight.
    public static func read(directory: String, model: EncoderConfiguration) throws -> (adapter: any Adapter, configuration: AdapterConfiguration) {
        let stored = try decodeJSON(Stored.self, fromFile: URL(fileURLWithPath: directory).appendingPathComponent(configurationFile).path)
        func invalid(_ detail: String) -> AdapterCheckpointError { .invalid(source: directory, detail: detail) }
        let settings: any AdapterMethodSettings
        switch stored.config["architecture"] {
        case nil, .null?, .string("bottleneck")?: settings = try bottleneckSettings(stored.config, invalid)
        case .string("lora")?: settings = try loraSettings(stored.config, invalid)
        case let other?: throw invalid("unsupported AdapterHub architecture \(other) (Graft reads bottleneck and lora)")
        }
        let adapter: any Adapter
        do {
            try settings.validate(model: model)
            adapter = try settings.makeAdapter(model: model, seed: 0)
        } catch { throw invalid("\(error)") }
        try loadWeights(into: adapter, directory: directory, files: weightsFiles, part: "adapter") { hubName($0, adapter: stored.name) }
        return (adapter, AdapterConfiguration(settings))
    }

    /// The bottleneck settings of AdapterHub's bottleneck configuration `settings`.
    static func bottleneckSettings(_ settings: [String: JSONValue], _ invalid: (String) -> AdapterCheckpointError) throws -> BottleneckConfiguration {
        func flag(_ key: String) -> Bool? { settings[key]?.bool }
        guard let placement = placements.first(where: { $0.flags.allSatisfy { flag($0.key) == $0.value } })?.placement else {
            throw invalid("an AdapterHub placement Graft has no form for: "
                + placements[0].flags.keys.sorted().map { "\($0) \(flag($0).map(String.init) ?? "missing")" }.joined(separator: ", "))
        }
        if let on = offSettings.first(where: { flag($0) == true }) { throw invalid("unsupported AdapterHub setting \(on)") }
        guard let activationName = settings["non_linearity"]?.string, let activation = Activation(rawValue: activationName) else {
            throw invalid("unsupported non_linearity \(settings["non_linearity"].map { "\($0)" } ?? "missing")")
        }
        let (factor, perLayer) = try reductionFactors(settings["reduction_factor"], invalid)
        var configuration = BottleneckConfiguration(placement: placement, reductionFactor: factor, reductionFactorPerLayer: perLayer,
                                                    leaveOut: settings["leave_out"]?.integers ?? [], activation: activation,
                                                    scaling: Float(settings["scaling"]?.number ?? 1),
                                                    initialization: settings["init_weights"]?.string == "mam" ? .nearIdentity : .bert)
        switch settings["inv_adapter"]?.string {
        case nil: break
        case "nice":
            configuration.invertible = true
            configuration.invertibleReductionFactor = Float(settings["inv_adapter_reduction_factor"]?.number ?? 2)
        case let other?: throw invalid("unsupported inv_adapter \(other) (Graft's invertible adapter is nice)")
        }
        return configuration
    }

    /// The LoRA settings of AdapterHub's `LoRAConfig` `settings` (AdapterHub's defaults where a key is absent).
    /// Every setting Graft does not read must be off (false, null or empty); `composition_mode` must be `add`
    /// (`scale` is (IA)^3).
    static func loraSettings(_ settings: [String: JSONValue], _ invalid: (String) -> AdapterCheckpointError) throws -> LoRAConfiguration {
        let read: Set = ["architecture", "selfattn_lora", "intermediate_lora", "output_lora", "leave_out", "r", "alpha", "dropout",
                         "attn_matrices", "init_weights_seed"]
        let refused = settings.keys.sorted().compactMap { key -> String? in
            let value = settings[key]!
            switch key {
            case _ where read.contains(key): return nil
            case "composition_mode": return value.string == "add" ? nil : "composition_mode \(value) (Graft's LoRA adds B A to the weight)"
            case "init_weights": return ["lora", "bert"].contains(value.string) ? nil : "init_weights \(value)"
            case "dtype": return value.isOff || value.string == "float32" ? nil : "dtype \(value) (Graft computes in float32)"
            default: return value.isOff ? nil : "\(key) \(value)"
            }
        }
        guard refused.isEmpty else { throw invalid("unsupported AdapterHub LoRA settings: \(refused.joined(separator: "; "))") }
        let matrices = settings["attn_matrices"]?.strings ?? ["q", "v"]
        if let unknown = matrices.first(where: { name in !attentionMatrices.contains { $0.name == name } }) {
            throw invalid("unsupported attn_matrices entry \"\(unknown)\" (AdapterHub's are q, k and v)")
        }
        var targets = settings["selfattn_lora"]?.bool ?? true ? attentionMatrices.filter { matrices.contains($0.name) }.map(\.slot) : []
        if settings["intermediate_lora"]?.bool == true { targets.append(.ffnIn) }
        if settings["output_lora"]?.bool == true { targets.append(.ffnOut) }
        guard !targets.isEmpty else { throw invalid("the LoRA adapts no matrix (selfattn_lora, intermediate_lora and output_lora are off)") }
        func number(_ key: String, _ fallback: Double) throws -> Double {
            guard let value = settings[key] else { return fallback }
            guard let number = value.number else { throw invalid("\(key) must be a number, got \(value)") }
            return number
        }
        guard let rank = Int(exactly: try number("r", 8)) else { throw invalid("r must be a whole number, got \(settings["r"]!)") }
        return LoRAConfiguration(rank: rank, alpha: Float(try number("alpha", 8)), dropout: Float(try number("dropout", 0)),
                                 targets: targets, leaveOut: settings["leave_out"]?.integers ?? [])
    }

    /// Reads the prediction head saved with the adapter in `directory` (`head_config.json`), for `backbone`;
    /// nil when there is none. A `classification` head on the first token's hidden state becomes a sequence
    /// classification head, a `tagging` head a token classification head, with the labels of `label2id`
    /// (`LABEL_0`, ... without one). A head of two layers (AdapterHub's default classification head:
    /// dropout, `Linear(hidden, hidden)`, `activation_function`, dropout, `Linear(hidden, labels)`) becomes a
    /// head with a hidden layer of that activation (`relu`, `swish`, `gelu` or `tanh`).
    /// - Throws: `AdapterCheckpointError` naming a head type or setting Graft cannot honour (more than two
    ///   layers, another hidden activation, the pooler's output, no bias, multi-label or other head types),
    ///   or a missing, unexpected or mis-shaped weight.
    public static func readHead(directory: String, backbone: Backbone) throws -> (configuration: HeadConfiguration, head: any Module)? {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(headConfigurationFile).path
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        func invalid(_ detail: String) -> AdapterCheckpointError { .invalid(source: path, detail: detail) }
        let stored = try decodeJSON(Stored.self, fromFile: path)
        let settings = stored.config
        let kinds = ["classification": "sequence classification", "tagging": "token classification"]
        guard let type = settings["head_type"]?.string, kinds[type] != nil else {
            throw invalid("unsupported head_type \(settings["head_type"].map { "\($0)" } ?? "missing") (Graft reads classification and tagging heads)")
        }
        let layers = settings["layers"]?.number
        let activationName = settings["activation_function"]?.string?.lowercased()
        let refused = Set(settings.keys).union(["layers", "activation_function"]).sorted().compactMap { key -> String? in
            let value = settings[key] ?? .null
            switch key {
            case "head_type", "num_labels", "label2id", "dropout_prob": return nil
            case "layers": return layers == 1 || layers == 2 ? nil
                : "layers \(value) (Graft's \(kinds[type]!) head is one linear layer, or two with a hidden layer)"
            case "activation_function": return layers != 2 || activationName.flatMap(Activation.init(rawValue:)) != nil ? nil
                : "activation_function \(value) (Graft's hidden layer has relu, swish, gelu or tanh)"
            case "bias": return value.bool == true ? nil : "bias \(value) (Graft's head has a bias)"
            case "use_pooler": return value.isOff ? nil : "use_pooler \(value) (Graft's head reads the first token's hidden state)"
            default: return value.isOff ? nil : "\(key) \(value)"
            }
        }
        guard refused.isEmpty else { throw invalid("unsupported AdapterHub head settings: \(refused.joined(separator: "; "))") }
        guard let count = settings["num_labels"]?.number.flatMap({ Int(exactly: $0) }), count > 0 else {
            throw invalid("num_labels must be a positive whole number")
        }
        var labels = (0..<count).map { "LABEL_\($0)" }
        if case .object(let table)? = settings["label2id"] {
            let ids = table.compactMapValues { $0.number.flatMap { Int(exactly: $0) } }
            guard ids.count == count, Set(ids.values) == Set(0..<count) else {
                throw invalid("label2id must number the \(count) labels 0...\(count - 1), each once")
            }
            for (label, id) in ids { labels[id] = label }
        }
        let activation = layers == 2 ? activationName.flatMap(Activation.init(rawValue:)) : nil
        let configuration: HeadConfiguration = type == "tagging" ? .tokenClassification(labels: labels, hiddenActivation: activation)
            : .sequenceClassification(labels: labels, pooling: .first, hiddenActivation: activation)
        let head = configuration.makeHead(backbone: backbone, seed: 0)
        try loadWeights(into: head, directory: directory, files: headWeightsFiles, part: "head") {
            headHubName($0, head: stored.name, hiddenLayer: activation != nil)
        }
        return (configuration, head)
    }

    /// Loads every parameter of `module` from the first of `files` found in `directory`, whose tensor for
    /// parameter `name` is `hubName(name)`, under the task model's `bert.` or `roberta.` when AdapterHub saved
    /// it from one. The file must hold exactly those tensors, with the parameters' shapes.
    static func loadWeights(into module: any Module, directory: String, files: [String], part: String,
                            hubName: (String) -> String) throws {
        let url = URL(fileURLWithPath: directory)
        guard let weightsFile = files.map({ url.appendingPathComponent($0).path }).first(where: FileManager.default.fileExists) else {
            throw AdapterCheckpointError.invalid(source: directory, detail: "no \(files.joined(separator: " or "))")
        }
        let weights = try tensorArchive(at: weightsFile)
        let names = Set(weights.tensorNames)
        let local = Dictionary(uniqueKeysWithValues: module.namedParameters().map { ($0.name, hubName($0.name)) })
        let prefix = ["", "bert.", "roberta."].first { prefix in local.values.contains { names.contains(prefix + $0) } } ?? ""
        let expected = local.mapValues { prefix + $0 }
        let unexpected = names.subtracting(expected.values).sorted()
        guard unexpected.isEmpty else { throw AdapterCheckpointError.unexpectedWeights(source: weightsFile, part: part, names: unexpected) }
        let missing = expected.values.filter { !names.contains($0) }.sorted()
        guard missing.isEmpty else { throw AdapterCheckpointError.missingWeights(source: weightsFile, part: part, names: missing) }
        for (name, parameter) in module.namedParameters() {
            let value = try weights.tensor(named: expected[name]!)
            guard value.shape == parameter.value.shape else {
                throw AdapterCheckpointError.shapeMismatch(source: weightsFile, name: expected[name]!, expected: parameter.value.shape, found: value.shape)
            }
            parameter.value = value
        }
    }

    /// Writes `adapter` (bottleneck or LoRA) as `save_adapter(DIR, name, use_safetensors=True)` does
    /// (`adapter_config.json`, `adapter.safetensors`), for a model of shape `model`: AdapterHub loads it
    /// with `model.load_adapter(DIR, use_safetensors=True)`. The head is written by `writeHead`.
    /// - Throws: `ConfigurationError` for an adapter with no AdapterHub form: another method, LoRA on
    ///   `attention.output.dense` (AdapterHub's LoRA adapts q, k, v, intermediate and output) or rank-stabilised LoRA.
    public static func write(_ adapter: any Adapter, name: String, model: EncoderConfiguration, to directory: String) throws {
        let config: [String: Any]
        switch adapter {
        case let bottleneck as BottleneckAdapter: config = hubSettings(bottleneck.configuration)
        case let lora as LoRAAdapter: config = try hubSettings(lora.configuration)
        default: throw ConfigurationError("a \(adapter.method) adapter has no AdapterHub form; Graft writes bottleneck adapters and LoRA")
        }
        try writeFiles(config: config, name: name, model: model, modelClass: "Model",
                       tensors: adapter.namedParameters().map { (hubName($0.name, adapter: name), $0.parameter.value) },
                       configurationFile: configurationFile, weightsFile: weightsFiles[1], directory: directory)
    }

    /// Why a head of this configuration has no AdapterHub form, or nil when `writeHead` writes it.
    public static func headRefusal(_ configuration: HeadConfiguration) -> String? {
        switch configuration {
        case .maskedLM: "Graft does not write masked-LM heads in AdapterHub's format"
        case .sequenceClassification(_, .mean, _): "AdapterHub's classification head reads the first token, not the mean of the tokens"
        case .sequenceClassification(_, .first, _), .tokenClassification: Set(configuration.labels).count == configuration.labels.count
            ? nil : "AdapterHub's label2id needs distinct labels"
        }
    }

    /// Writes a classification (first-token pooling) or token classification head, with its parameters
    /// `weights` by Graft's names (`classifier.weight`, `classifier.bias`, and `dense.weight`, `dense.bias`
    /// with a hidden layer), as `save_head(DIR, name, use_safetensors=True)` does (`head_config.json`,
    /// `model_head.safetensors`): a `classification` or `tagging` head of one layer, or of two with the
    /// hidden layer's activation as `activation_function`, that `load_adapter(DIR, use_safetensors=True)`
    /// on AdapterHub's `AutoAdapterModel` loads with the adapter.
    /// - Throws: `ConfigurationError` with `headRefusal`'s reason for a head with no AdapterHub form.
    public static func writeHead(_ configuration: HeadConfiguration, weights: [String: Tensor], name: String,
                                 model: EncoderConfiguration, to directory: String) throws {
        if let reason = headRefusal(configuration) { throw ConfigurationError("the \(configuration.kind) head: \(reason)") }
        var config: [String: Any] = [
            "head_type": "tagging", "activation_function": configuration.hiddenActivation?.rawValue ?? "tanh", "dropout_prob": NSNull(),
            "layers": configuration.hiddenActivation == nil ? 1 : 2,
            "num_labels": configuration.labels.count,
            "label2id": Dictionary(uniqueKeysWithValues: configuration.labels.enumerated().map { ($0.element, $0.offset) }),
        ]
        if case .sequenceClassification = configuration {
            config.merge(["head_type": "classification", "bias": true, "use_pooler": false]) { $1 }
        }
        try writeFiles(config: config, name: name, model: model, modelClass: "AdapterModel",
                       tensors: weights.map { (headHubName($0.key, head: name, hiddenLayer: configuration.hiddenActivation != nil), $0.value) },
                       configurationFile: headConfigurationFile, weightsFile: headWeightsFiles[1], directory: directory)
    }

    /// Writes AdapterHub's configuration file (`config` wrapped with the model's description) and the
    /// tensors as safetensors into `directory`, created if needed. `modelClass` is the class name's suffix
    /// after the architecture (`Model`: `BertModel`; `AdapterModel`: `BertAdapterModel`).
    static func writeFiles(config: [String: Any], name: String, model: EncoderConfiguration, modelClass: String,
                           tensors: [(String, Tensor)], configurationFile: String, weightsFile: String, directory: String) throws {
        let architecture = ["xlm-roberta": "XLMRoberta", "roberta": "Roberta", "distilbert": "DistilBert"][model.modelType] ?? "Bert"
        let stored: [String: Any] = ["config": config, "hidden_size": model.hiddenSize, "model_class": architecture + modelClass,
                                     "model_name": "", "model_type": model.modelType, "name": name, "version": "adapters.1.3.0"]
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let url = URL(fileURLWithPath: directory)
        try writeAtomically(Data((try pythonJSON(stored) + "\n").utf8), to: url.appendingPathComponent(configurationFile).path)
        try SafetensorsFile.write(Dictionary(uniqueKeysWithValues: tensors), to: url.appendingPathComponent(weightsFile).path)
    }

    /// AdapterHub's bottleneck configuration for `c`.
    static func hubSettings(_ c: BottleneckConfiguration) -> [String: Any] {
        var config: [String: Any] = [
            "adapter_residual_before_ln": false, "cross_adapter": false, "dropout": 0.0, "factorized_phm_W": true,
            "factorized_phm_rule": false, "hypercomplex_nonlinearity": "glorot-uniform",
            "init_weights": c.initialization == .nearIdentity ? "mam" : "bert", "init_weights_seed": NSNull(),
            "inv_adapter": c.invertible ? "nice" : NSNull(), "inv_adapter_reduction_factor": c.invertible ? Double(c.invertibleReductionFactor) : NSNull(),
            "learn_phm": true, "leave_out": c.leaveOut, "ln_after": false, "ln_before": false,
            "non_linearity": c.activation.rawValue, "phm_bias": true, "phm_c_init": "normal", "phm_dim": 4, "phm_init_range": 0.0001,
            "phm_layer": false, "phm_rank": 1, "scaling": Double(c.scaling), "shared_W_phm": false, "shared_phm_rule": true,
            "stochastic_depth": 0.0, "use_gating": false,
            "reduction_factor": c.reductionFactorPerLayer.isEmpty ? Double(c.reductionFactor) as Any
                : c.reductionFactorPerLayer.mapValues(Double.init).merging(["default": Double(c.reductionFactor)]) { $1 },
        ]
        for (key, value) in placements.first(where: { $0.placement == c.placement })!.flags { config[key] = value }
        return config
    }

    /// AdapterHub's `LoRAConfig` for `c` (`alpha` a whole number where it is one, as AdapterHub's default is).
    static func hubSettings(_ c: LoRAConfiguration) throws -> [String: Any] {
        if let other = c.targets.first(where: { ![.query, .key, .value, .ffnIn, .ffnOut].contains($0) }) {
            throw ConfigurationError("LoRA on \(other.modulePath) has no AdapterHub form (AdapterHub's LoRA adapts q, k, v, intermediate and output)")
        }
        guard !c.rankStabilized else { throw ConfigurationError("rank-stabilised LoRA (alpha / sqrt(r)) has no AdapterHub form (it scales by alpha / r)") }
        let matrices = attentionMatrices.filter { c.targets.contains($0.slot) }.map(\.name)
        return [
            "alpha": c.alpha == c.alpha.rounded() ? Int(c.alpha) as Any : Double("\(c.alpha)")!, "architecture": "lora",
            "attn_matrices": matrices, "composition_mode": "add", "dropout": Double("\(c.dropout)")!, "dtype": NSNull(),
            "init_weights": "lora", "init_weights_seed": NSNull(), "intermediate_lora": c.targets.contains(.ffnIn),
            "leave_out": c.leaveOut, "output_lora": c.targets.contains(.ffnOut), "r": c.rank, "selfattn_lora": !matrices.isEmpty,
            "use_dora": false, "use_gating": false, "vera_b": NSNull(), "vera_d": NSNull(),
        ]
    }

    /// JSON in which a `Double` keeps its decimal point (`1.0`, not `1`): AdapterHub tells a float
    /// `scaling` from other kinds by its Python type. Keys sorted.
    static func pythonJSON(_ value: Any) throws -> String {
        switch value {
        case is NSNull: return "null"
        case let flag as Bool: return flag ? "true" : "false"
        case let number as Int: return String(number)
        case let number as Double: return "\(number)"
        case let text as String: return String(decoding: try JSONSerialization.data(withJSONObject: text, options: .fragmentsAllowed), as: UTF8.self)
        case let items as [Any]: return "[" + (try items.map(pythonJSON)).joined(separator: ", ") + "]"
        case let object as [String: Any]:
            return "{" + (try object.keys.sorted().map { "\(try pythonJSON($0)): \(try pythonJSON(object[$0]!))" }).joined(separator: ", ") + "}"
        default: throw ConfigurationError("cannot write \(value) as JSON")
        }
    }

    /// AdapterHub's name of Graft's adapter parameter `name` for the adapter named `adapter`:
    /// `layer.3.feed_forward.down.weight` -> `encoder.layer.3.output.adapters.NAME.adapter_down.0.weight`,
    /// `invertible.f.up.bias` -> `invertible_adapters.NAME.F.2.bias`,
    /// `layer.1.ffn_in.lora_A` -> `encoder.layer.1.intermediate.dense.loras.NAME.lora_A`.
    static func hubName(_ name: String, adapter: String) -> String {
        let parts = name.split(separator: ".").map(String.init)
        if parts[0] == "invertible" {
            return "invertible_adapters.\(adapter).\(parts[1].uppercased()).\(parts[2] == "down" ? 0 : 2).\(parts[3])"
        }
        if let slot = LinearSlot(rawValue: parts[2]) { return "encoder.layer.\(parts[1]).\(slot.modulePath).loras.\(adapter).\(parts[3])" }
        let module = parts[2] == "attention" ? "attention.output" : "output"
        let projection = parts[3] == "down" ? "adapter_down.0" : "adapter_up"
        return "encoder.layer.\(parts[1]).\(module).adapters.\(adapter).\(projection).\(parts[4])"
    }

    /// AdapterHub's name of Graft's head parameter `name` (`classifier.weight`, `dense.bias`) for the head named
    /// `head`, a module of AdapterHub's sequence: the linear layer after the dropout of a one-layer head,
    /// `heads.NAME.1.weight`; with a hidden layer, `dense` at 1 and the classifier at 4 (after the
    /// activation at 2 and the second dropout at 3).
    static func headHubName(_ name: String, head: String, hiddenLayer: Bool) -> String {
        let parts = name.split(separator: ".")
        return "heads.\(head).\(hiddenLayer && parts[0] == "classifier" ? 4 : 1).\(parts.last!)"
    }

    /// AdapterHub's `reduction_factor`: one number, or `{"default": x, "LAYER": y, ...}`.
    static func reductionFactors(_ value: JSONValue?, _ invalid: (String) -> AdapterCheckpointError) throws -> (Float, [String: Float]) {
        if let number = value?.number { return (Float(number), [:]) }
        guard case .object(let table)? = value, let fallback = table["default"]?.number else {
            throw invalid("reduction_factor must be a number or an object with a default")
        }
        var perLayer: [String: Float] = [:]
        for (key, factor) in table where key != "default" {
            guard let factor = factor.number else { throw invalid("reduction_factor of layer \(key) is not a number") }
            perLayer[key] = Float(factor)
        }
        return (Float(fallback), perLayer)
    }

    /// The parts of `adapter_config.json` and `head_config.json` read here.
    struct Stored: Decodable {
        let name: String
        let config: [String: JSONValue]
    }
}

/// A JSON value, for configurations read field by field.
enum JSONValue: Decodable, CustomStringConvertible {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
    var number: Double? { if case .number(let value) = self { value } else { nil } }
    var string: String? { if case .string(let value) = self { value } else { nil } }
    var strings: [String]? { array(of: \.string) }
    var integers: [Int]? { array { $0.number.map { Int($0) } } }
    /// Whether this is a setting's off value: null, false, or an empty array or object.
    var isOff: Bool {
        switch self {
        case .null, .bool(false): true
        case .array(let items): items.isEmpty
        case .object(let table): table.isEmpty
        default: false
        }
    }

    /// The items of an array, each transformed by `item`; nil when this is not an array or an item does not transform.
    func array<Item>(of item: (JSONValue) -> Item?) -> [Item]? {
        guard case .array(let items) = self else { return nil }
        let values = items.compactMap(item)
        return values.count == items.count ? values : nil
    }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let items): "[\(items.map(\.description).joined(separator: ", "))]"
        case .object: "{...}"
        }
    }
}
