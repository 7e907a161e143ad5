import ArgumentParser
import Foundation
import Graft

/// `adapt export FILE --format peft|transformers --output DIR`: writes an adapter or a backbone in another library's format.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Graft adapter checkpoint or backbone in another library's format.",
        discussion: """
            --format peft takes an adapter checkpoint and writes a peft LoRA directory (adapter_config.json, \
            adapter_model.safetensors) for the backbone's Hugging Face encoder model (AutoModel): load it with \
            PeftModel.from_pretrained(model, DIR). LoRA adapters are written as they are, MoS adapters \
            de-sharded into plain LoRA first; bottleneck adapters have no peft form. The head is not written. \
            --format transformers takes a backbone file and writes a Hugging Face model directory \
            (config.json, model.safetensors in float32, \(Backbone.tokenizerFile)): load it with \
            transformers.AutoModel.from_pretrained(DIR); it computes exactly what the backbone computes, and \
            `adapt import DIR` reads it back with the same checksum. transformers gets no tokenizer from it: \
            `adapt data tokenize` writes Graft's token ids.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case peft, transformers }

    @Argument(help: "The Graft adapter checkpoint (peft) or backbone file (transformers), .h5.")
    var input: String
    @Option(help: "The format to write: peft (an adapter) or transformers (a backbone).")
    var format: Format
    @Option(name: .shortAndLong, help: "The directory to write (created if needed).")
    var output: String

    func validate() throws {
        let files = format == .peft ? [PeftFormat.configurationFile, PeftFormat.weightsFile] : Backbone.exportedFiles
        try checkNotOverwritten([input], by: [output] + files.map { URL(fileURLWithPath: output).appendingPathComponent($0).path })
    }

    func run() throws {
        switch format {
        case .peft: try exportPeft()
        case .transformers:
            let backbone = try Backbone.load(from: input)
            try backbone.exportHuggingFace(to: output)
            let c = backbone.configuration
            print("wrote \(output) (transformers \(c.modelType), \(c.layerCount) layers, hidden \(c.hiddenSize), "
                  + "\(backbone.encoder.namedParameters().reduce(0) { $0 + $1.parameter.value.count }) parameters)")
        }
    }

    private func exportPeft() throws {
        if PeftFormat.isAdapterDirectory(input) {
            throw CommandError("\(input) is already a peft adapter directory")
        }
        let (header, adapter) = try AdapterCheckpoint.loadAdapter(from: input)
        guard let mergeable = adapter as? any MergeableAdapter else {
            throw CommandError("\(input) is a \(header.configuration.method) adapter; peft export supports adapters that are changes of linear weights only")
        }
        let lora = mergeable.asLoRA()
        try PeftFormat.write(lora, baseModel: header.backboneName, to: output)
        print("wrote \(output) (peft LoRA, rank \(lora.configuration.rank), \(lora.parameterCount) parameters\(header.headConfiguration == nil ? "" : "; the head is not exported"))")
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
