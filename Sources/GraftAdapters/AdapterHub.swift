import Foundation
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor

/// Bottleneck adapters saved by AdapterHub `adapters` (`model.save_adapter(DIR, NAME)`): a
/// directory of `adapter_config.json` and `pytorch_adapter.bin` (or `adapter.safetensors`),
/// as AdapterHub's hub and MAD-X language adapters are shipped.
public enum AdapterHubFormat {
    /// The weights file `save_adapter` writes (a `torch.save` state dict), and its safetensors form
    /// (`save_adapter(..., use_safetensors=True)`, which is what `write` produces).
    public static let weightsFiles = ["pytorch_adapter.bin", "adapter.safetensors"]

    /// Whether `path` is an AdapterHub adapter directory (its configuration has AdapterHub's `config` object).
    public static func isAdapterDirectory(_ path: String) -> Bool {
        let url = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: url.appendingPathComponent("adapter_config.json").path),
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

    /// Reads the bottleneck adapter in `directory` for a model of shape `model`.
    /// - Throws: `AdapterCheckpointError` naming a setting Graft cannot honour, or a missing,
    ///   unexpected or mis-shaped weight.
    public static func read(directory: String, model: EncoderConfiguration) throws -> BottleneckAdapter {
        let url = URL(fileURLWithPath: directory)
        func invalid(_ detail: String) -> AdapterCheckpointError { .invalid(source: directory, detail: detail) }
        let stored = try decodeJSON(Stored.self, fromFile: url.appendingPathComponent("adapter_config.json").path)
        let settings = stored.config
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
        let adapter: BottleneckAdapter
        do {
            try configuration.validate(model: model)
            adapter = BottleneckAdapter(configuration, model: model, seed: 0)
        } catch { throw invalid("\(error)") }

        guard let weightsFile = weightsFiles.map({ url.appendingPathComponent($0).path }).first(where: FileManager.default.fileExists) else {
            throw invalid("no \(weightsFiles.joined(separator: " or "))")
        }
        let weights = try tensorArchive(at: weightsFile)
        let names = Set(weights.tensorNames)
        let prefix = ["", "bert.", "roberta."].first { prefix in names.contains { $0.hasPrefix(prefix + "encoder.layer.") } } ?? ""
        let expected = Dictionary(uniqueKeysWithValues: adapter.namedParameters().map { ($0.name, prefix + hubName($0.name, adapter: stored.name)) })
        let unexpected = names.subtracting(expected.values).sorted()
        guard unexpected.isEmpty else { throw AdapterCheckpointError.unexpectedWeights(source: weightsFile, part: "adapter", names: unexpected) }
        let missing = expected.values.filter { !names.contains($0) }.sorted()
        guard missing.isEmpty else { throw AdapterCheckpointError.missingWeights(source: weightsFile, part: "adapter", names: missing) }
        for (name, parameter) in adapter.namedParameters() {
            let value = try weights.tensor(named: expected[name]!)
            guard value.shape == parameter.value.shape else {
                throw AdapterCheckpointError.shapeMismatch(source: weightsFile, name: expected[name]!, expected: parameter.value.shape, found: value.shape)
            }
            parameter.value = value
        }
        return adapter
    }

    /// Writes `adapter` as `save_adapter(DIR, name, use_safetensors=True)` does (`adapter_config.json`,
    /// `adapter.safetensors`), for a model of shape `model`: AdapterHub loads it with
    /// `model.load_adapter(DIR, use_safetensors=True)`. Heads are not written.
    public static func write(_ adapter: BottleneckAdapter, name: String, model: EncoderConfiguration, to directory: String) throws {
        let c = adapter.configuration
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
        let modelClass = ["bert": "BertModel", "xlm-roberta": "XLMRobertaModel", "roberta": "RobertaModel"][model.modelType] ?? "BertModel"
        let stored: [String: Any] = ["config": config, "hidden_size": model.hiddenSize, "model_class": modelClass, "model_name": "",
                                     "model_type": model.modelType, "name": name, "version": "adapters.1.3.0"]
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let url = URL(fileURLWithPath: directory)
        try writeAtomically(Data((try pythonJSON(stored) + "\n").utf8), to: url.appendingPathComponent("adapter_config.json").path)
        let tensors = Dictionary(uniqueKeysWithValues: adapter.namedParameters().map { (hubName($0.name, adapter: name), $0.parameter.value) })
        try SafetensorsFile.write(tensors, to: url.appendingPathComponent("adapter.safetensors").path)
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

    /// AdapterHub's name of Graft's bottleneck parameter `name` for the adapter named `adapter`:
    /// `layer.3.feed_forward.down.weight` -> `encoder.layer.3.output.adapters.NAME.adapter_down.0.weight`,
    /// `invertible.f.up.bias` -> `invertible_adapters.NAME.F.2.bias`.
    static func hubName(_ name: String, adapter: String) -> String {
        let parts = name.split(separator: ".").map(String.init)
        if parts[0] == "invertible" {
            return "invertible_adapters.\(adapter).\(parts[1].uppercased()).\(parts[2] == "down" ? 0 : 2).\(parts[3])"
        }
        let module = parts[2] == "attention" ? "attention.output" : "output"
        let projection = parts[3] == "down" ? "adapter_down.0" : "adapter_up"
        return "encoder.layer.\(parts[1]).\(module).adapters.\(adapter).\(projection).\(parts[4])"
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

    /// The parts of `adapter_config.json` read here.
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
    var integers: [Int]? {
        guard case .array(let items) = self else { return nil }
        let values = items.compactMap { $0.number.map { Int($0) } }
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
