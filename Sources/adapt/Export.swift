import ArgumentParser
import Foundation
import Graft

/// `adapt export FILE --format peft|adapterhub|transformers --output DIR`: writes an adapter or a backbone in another library's format.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Graft adapter checkpoint or backbone in another library's format.",
        discussion: """
            --format peft takes an adapter checkpoint and writes a peft LoRA directory (adapter_config.json, \
            adapter_model.safetensors) for the backbone's Hugging Face encoder model (AutoModel): load it with \
            PeftModel.from_pretrained(model, DIR). LoRA adapters are written as they are, MoS adapters \
            de-sharded into plain LoRA first; bottleneck adapters have no peft form. The head is not written. \
            --format adapterhub takes a bottleneck or LoRA adapter checkpoint (MoS de-sharded into LoRA) and writes \
            what AdapterHub's save_adapter(DIR, NAME, with_head=True, use_safetensors=True) writes \
            (adapter_config.json, adapter.safetensors, and head_config.json, model_head.safetensors for a \
            classification head on the first token or a token classification head): load it with \
            model.load_adapter(DIR, use_safetensors=True) on the backbone's AdapterHub model \
            (adapters.AutoAdapterModel; the encoder model when there is no head). \
            --format transformers takes a backbone file and writes a Hugging Face model directory \
            (config.json, model.safetensors in float32, \(Backbone.tokenizerFile), and tokenizer.json when the \
            backbone was imported with one): load it with transformers.AutoModel.from_pretrained(DIR); it \
            computes exactly what the backbone computes, and `adapt import DIR` reads it back with the same \
            checksum. A backbone without tokenizer.json (the bundled one's SentencePiece model) gives transformers \
            no tokenizer: `adapt data tokenize` writes Graft's token ids.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case peft, adapterhub, transformers }

    @Argument(help: "The Graft adapter checkpoint (peft, adapterhub) or backbone file (transformers), .h5.")
    var input: String
    @Option(help: "The format to write: peft or adapterhub (an adapter), or transformers (a backbone).")
    var format: Format
    @Option(name: .shortAndLong, help: "The directory to write (created if needed).")
    var output: String
    @Option(help: "The backbone an adapter directory (peft, AdapterHub) belongs to; needed to read one.")
    var backbone: String?

    func validate() throws {
        let files = switch format {
        case .peft: [PeftFormat.configurationFile, PeftFormat.weightsFile]
        case .adapterhub: [AdapterHubFormat.configurationFile, AdapterHubFormat.weightsFiles[1], AdapterHubFormat.headConfigurationFile,
                           AdapterHubFormat.headWeightsFiles[1]]
        case .transformers: Backbone.exportedFiles
        }
        try checkNotOverwritten([input], by: [output] + files.map { URL(fileURLWithPath: output).appendingPathComponent($0).path })
    }

    func run() throws {
        switch format {
        case .peft: try exportPeft()
        case .adapterhub:
            let (name, read, model, _, head) = try readAdapter()
            let adapter = (read as? any MergeableAdapter)?.asLoRA() ?? read
            do { try AdapterHubFormat.write(adapter, name: name, model: model, to: output) } catch let error as ConfigurationError {
                throw CommandError("\(input) cannot be written in AdapterHub's format: \(error.description)")
            }
            var note = ""
            if let head {
                if let reason = AdapterHubFormat.headRefusal(head.configuration) {
                    note = "; the \(head.configuration.kind) head is not exported: \(reason)"
                } else {
                    try AdapterHubFormat.writeHead(head.configuration, weights: head.weights, name: name, model: model, to: output)
                    note = "; \(head.configuration.kind) head with \(head.configuration.labels.count) labels"
                        + (head.configuration.hiddenActivation.map { ", two layers (\($0.rawValue))" } ?? "")
                }
            }
            print("wrote \(output) (AdapterHub \(adapter.method) adapter \"\(name)\", \(adapter.parameterCount) parameters\(note))")
        case .transformers:
            let backbone = try Backbone.load(from: input)
            try backbone.exportHuggingFace(to: output)
            let c = backbone.configuration
            print("wrote \(output) (transformers \(c.modelType), \(c.layerCount) layers, hidden \(c.hiddenSize), "
                  + "\(backbone.encoder.namedParameters().reduce(0) { $0 + $1.parameter.value.count }) parameters)")
        }
    }

    /// The adapter to export and its head's configuration and weights: from a checkpoint file, or from an
    /// adapter directory read on `--backbone`.
    private func readAdapter() throws -> (name: String, adapter: any Adapter, model: EncoderConfiguration, backboneName: String,
                                          head: (configuration: HeadConfiguration, weights: [String: Tensor])?) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue {
            guard let backbone else { throw ValidationError("\(input) is an adapter directory: give --backbone, the model it belongs to") }
            let model = try Backbone.load(from: backbone)
            let checkpoint = try AdapterCheckpoint.load(from: input, backbone: model)
            let head = checkpoint.headConfiguration.flatMap { configuration in
                checkpoint.head.map { (configuration, Dictionary(uniqueKeysWithValues: $0.namedParameters().map { ($0.name, $0.parameter.value) })) }
            }
            return (checkpoint.name, checkpoint.adapter, model.configuration, model.name, head)
        }
        let (header, adapter, headWeights) = try AdapterCheckpoint.loadAdapter(from: input)
        return (header.name, adapter, header.backboneConfiguration, header.backboneName, header.headConfiguration.map { ($0, headWeights) })
    }

    private func exportPeft() throws {
        if PeftFormat.isAdapterDirectory(input) && !AdapterHubFormat.isAdapterDirectory(input) {
            throw CommandError("\(input) is already a peft adapter directory")
        }
        let (_, adapter, _, backboneName, head) = try readAdapter()
        guard let mergeable = adapter as? any MergeableAdapter else {
            throw CommandError("\(input) is a \(adapter.method) adapter; peft export supports adapters that are changes of linear weights only")
        }
        let lora = mergeable.asLoRA()
        try PeftFormat.write(lora, baseModel: backboneName, to: output)
        print("wrote \(output) (peft LoRA, rank \(lora.configuration.rank), \(lora.parameterCount) parameters\(head != nil ? "; the head is not exported" : ""))")
    }
}

/// Throws if writing any of `outputs` would replace one of `inputs` (the same file, after resolving links).
func checkNotOverwritten(_ inputs: [String], by outputs: [String]) throws {
    func resolved(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path }
    for input in inputs {
        let source = resolved(input)
        if let output = outputs.first(where: { resolved($0) == source }) {
            throw ValidationError("\(output) is the input \(input); choose another output")
        }
    }
}
