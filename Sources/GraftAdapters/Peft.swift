import Foundation
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor

/// LoRA adapters in peft's format, so that they move between Graft and Python:
/// a directory with `adapter_config.json` and `adapter_model.safetensors`,
/// whose tensors are named as peft saves them for the bare encoder model
/// (`AutoModel`), without the adapter name:
/// `base_model.model.encoder.layer.N.attention.self.query.lora_A.weight`.
public enum PeftFormat {
    /// Whether `path` is a directory holding `adapter_config.json`.
    public static func isAdapterDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            && FileManager.default.fileExists(atPath: URL(fileURLWithPath: path).appendingPathComponent(configurationFile).path)
    }

    /// The files of a peft adapter directory: its configuration and its weights.
    public static let configurationFile = "adapter_config.json"
    /// The weights file: the LoRA factors as safetensors, named as peft saves them.
    public static let weightsFile = "adapter_model.safetensors"

    /// Writes `adapter` as a peft LoRA directory (created if needed; other files
    /// in it are left alone). `target_modules` is a regular expression matching
    /// exactly the adapted modules, since peft's suffix matching cannot tell
    /// `output.dense` from `attention.output.dense`.
    public static func write(_ adapter: LoRAAdapter, baseModel: String, to directory: String) throws {
        let url = URL(fileURLWithPath: directory)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (layer, slots) in adapter.updates {
            for (slot, update) in slots {
                tensors[key(layer: layer, slot: slot, factor: "A")] = update.a.value
                tensors[key(layer: layer, slot: slot, factor: "B")] = update.b.value
            }
        }
        let layers = adapter.updates.keys.sorted().map(String.init).joined(separator: "|")
        let modules = LinearSlot.allCases.filter { slot in adapter.updates.values.contains { $0[slot] != nil } }
            .map { $0.modulePath.replacingOccurrences(of: ".", with: "\\.") }.joined(separator: "|")
        let c = adapter.configuration
        let configuration = Configuration(
            peftType: "LORA", baseModel: baseModel, rank: c.rank, alpha: c.alpha, dropout: c.dropout, rankStabilized: c.rankStabilized,
            targetModules: .pattern(#".*encoder\.layer\.(\#(layers))\.(\#(modules))"#), bias: "none", useDoRA: false,
            fanInFanOut: false, inferenceMode: true, rankPattern: [:], alphaPattern: [:])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let json = try encoder.encode(configuration)
        try writeAtomically(to: url.appendingPathComponent(configurationFile).path) { try json.write(to: URL(fileURLWithPath: $0)) }
        try SafetensorsFile.write(tensors, metadata: ["format": "pt"], to: url.appendingPathComponent(weightsFile).path)
    }

    /// Reads a peft LoRA directory for a model of shape `model`.
    ///
    /// The adapted layers and slots come from the tensor names; they must form a
    /// regular pattern (the same slots in every adapted layer), which becomes
    /// the configuration's `targets` and `leaveOut`. Settings Graft does not
    /// implement (DoRA, biases, per-module ranks or alphas, `modules_to_save`,
    /// `fan_in_fan_out`) are errors, as are unknown tensors and shapes that do
    /// not fit the model.
    public static func read(directory: String, model: EncoderConfiguration) throws -> LoRAAdapter {
        let url = URL(fileURLWithPath: directory)
        let configurationPath = url.appendingPathComponent(configurationFile).path
        func invalid(_ detail: String) -> AdapterCheckpointError { .invalid(source: directory, detail: detail) }
        let c: Configuration
        do {
            c = try JSONDecoder().decode(Configuration.self, from: Data(contentsOf: URL(fileURLWithPath: configurationPath)))
        } catch {
            throw invalid("cannot read \(configurationFile): \(error)")
        }
        guard c.peftType == "LORA" else { throw invalid("peft_type is \(c.peftType ?? "missing"); Graft reads LORA adapters") }
        guard let rank = c.rank else { throw invalid("\(configurationFile) has no r") }
        let settings = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configurationPath)))) as? [String: Any] ?? [:]
        let unsupported = refusedSettings(settings)
        guard unsupported.isEmpty else { throw invalid("unsupported peft settings: \(unsupported.joined(separator: "; "))") }

        let weightsPath = url.appendingPathComponent(weightsFile).path
        guard FileManager.default.fileExists(atPath: weightsPath) else { throw invalid("no \(weightsFile) (Graft reads only safetensors)") }
        let weights = try SafetensorsFile(contentsOf: weightsPath)
        var factors: [Int: [LinearSlot: [String: Tensor]]] = [:]
        var unexpected: [String] = []
        for name in weights.tensorNames {
            guard let (layer, slot, factor) = parse(name), layer < model.layerCount else { unexpected.append(name); continue }
            factors[layer, default: [:]][slot, default: [:]][factor] = try weights.tensor(named: name)
        }
        guard unexpected.isEmpty else {
            throw AdapterCheckpointError.unexpectedWeights(source: weightsPath, part: "LoRA", names: unexpected)
        }
        let targets = LinearSlot.allCases.filter { slot in factors.values.contains { $0[slot] != nil } }
        var updates: [Int: [LinearSlot: LowRankUpdate]] = [:]
        for (layer, slots) in factors {
            let missing = targets.filter { slots[$0] == nil }.map { key(layer: layer, slot: $0, factor: "A") }
                + slots.flatMap { slot, pair in ["A", "B"].filter { pair[$0] == nil }.map { key(layer: layer, slot: slot, factor: $0) } }
            guard missing.isEmpty else { throw AdapterCheckpointError.missingWeights(source: weightsPath, part: "LoRA", names: missing.sorted()) }
            for (slot, pair) in slots {
                let (inputs, outputs) = slot.shape(model)
                for (factor, shape) in [("A", [rank, inputs]), ("B", [outputs, rank])] where pair[factor]!.shape != shape {
                    throw AdapterCheckpointError.shapeMismatch(source: weightsPath, name: key(layer: layer, slot: slot, factor: factor),
                                                               expected: shape, found: pair[factor]!.shape)
                }
                updates[layer, default: [:]][slot] = LowRankUpdate(a: pair["A"]!, b: pair["B"]!)
            }
        }
        guard !updates.isEmpty else { throw invalid("\(weightsFile) holds no LoRA weights") }
        let configuration = LoRAConfiguration(
            rank: rank, alpha: c.alpha ?? 8, dropout: c.dropout ?? 0, targets: targets, rankStabilized: c.rankStabilized ?? false,
            leaveOut: (0..<model.layerCount).filter { updates[$0] == nil })
        return LoRAAdapter(configuration, updates: updates)
    }

    /// The peft settings Graft reads (`peft_type`, `r`, `lora_alpha`, `lora_dropout`, `use_rslora`) or
    /// that only describe the adapter (names, versions, which modules were targeted).
    static let acceptedSettings: Set<String> = [
        "peft_type", "r", "lora_alpha", "lora_dropout", "use_rslora", "auto_mapping", "base_model_name_or_path",
        "inference_mode", "peft_version", "revision", "task_type", "target_modules", "layers_to_transform",
        "layers_pattern", "exclude_modules", "megatron_core", "qalora_group_size", "ensure_weight_tying",
    ]

    /// The settings of a peft configuration that would make the adapter compute something plain
    /// LoRA does not, each with the reason. Every other setting (DoRA, biases, per-module ranks,
    /// `modules_to_save`, aLoRA, and any setting Graft does not know) is accepted only at its
    /// off value: null, false, empty.
    static func refusedSettings(_ settings: [String: Any]) -> [String] {
        func isOff(_ value: Any) -> Bool {
            value is NSNull || (value as? Bool) == false || (value as? [Any])?.isEmpty == true || (value as? [String: Any])?.isEmpty == true
        }
        return settings.keys.sorted().compactMap { key in
            let value = settings[key]!
            let shown = (try? JSONSerialization.data(withJSONObject: value, options: .fragmentsAllowed)).map { String(decoding: $0, as: UTF8.self) } ?? "\(value)"
            switch key {
            case _ where acceptedSettings.contains(key): return nil
            case "bias": return value as? String == "none" ? nil : "bias \(shown) (Graft's LoRA has no bias terms)"
            case "init_lora_weights":
                // Initialisations that only draw A and B are fine; PiSSA, OLoRA, CorDA, EVA and LoftQ change the base
                // weights too, so their adapters are deltas to weights this backbone does not have.
                if value is Bool || value as? String == "gaussian" { return nil }
                return "init_lora_weights \(shown) (it changes the base weights: save the adapter with peft's "
                    + "path_initial_model_for_weight_conversion so that it applies to the original model)"
            case "alora_invocation_tokens": return isOff(value) ? nil : "alora_invocation_tokens (activated LoRA; peft itself cannot merge it)"
            default: return isOff(value) ? nil : "\(key) \(shown)"
            }
        }
    }

    /// The peft name of one factor (`A` or `B`) of a slot.
    static func key(layer: Int, slot: LinearSlot, factor: String) -> String {
        "base_model.model.encoder.layer.\(layer).\(slot.modulePath).lora_\(factor).weight"
    }

    /// `(layer, slot, "A" | "B")` of a peft tensor name; the model may be a task
    /// model whose encoder sits under `bert.` or `roberta.`.
    private static func parse(_ name: String) -> (Int, LinearSlot, String)? {
        let prefixes = ["base_model.model.encoder.layer.", "base_model.model.bert.encoder.layer.", "base_model.model.roberta.encoder.layer."]
        guard let prefix = prefixes.first(where: name.hasPrefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let layer = Int(parts[0]) else { return nil }
        for factor in ["A", "B"] {
            let suffix = ".lora_\(factor).weight"
            guard parts[1].hasSuffix(suffix) else { continue }
            let path = parts[1].dropLast(suffix.count)
            return LinearSlot.allCases.first { $0.modulePath == path }.map { (layer, $0, factor) }
        }
        return nil
    }

    /// The `adapter_config.json` keys Graft reads and writes.
    struct Configuration: Codable {
        var peftType: String?
        var baseModel: String?
        var rank: Int?
        var alpha: Float?
        var dropout: Float?
        var rankStabilized: Bool?
        var targetModules: TargetModules?
        var bias: String?
        var loraBias: Bool?
        var useDoRA: Bool?
        var fanInFanOut: Bool?
        var inferenceMode: Bool?
        var rankPattern: [String: Int]?
        var alphaPattern: [String: Float]?
        var modulesToSave: [String]?

        enum CodingKeys: String, CodingKey {
            case peftType = "peft_type", baseModel = "base_model_name_or_path", rank = "r", alpha = "lora_alpha"
            case dropout = "lora_dropout", rankStabilized = "use_rslora", targetModules = "target_modules", bias
            case loraBias = "lora_bias", useDoRA = "use_dora", fanInFanOut = "fan_in_fan_out", inferenceMode = "inference_mode"
            case rankPattern = "rank_pattern", alphaPattern = "alpha_pattern", modulesToSave = "modules_to_save"
        }
    }

    /// peft's `target_modules`: module-name suffixes, or one regular expression.
    enum TargetModules: Codable {
        case names([String])
        case pattern(String)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let pattern = try? container.decode(String.self) { self = .pattern(pattern) } else { self = .names(try container.decode([String].self)) }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .names(let names): try container.encode(names)
            case .pattern(let pattern): try container.encode(pattern)
            }
        }
    }
}
