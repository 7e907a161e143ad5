import ArgumentParser
import Foundation
import Graft

/// `adapt export ADAPTER.h5 --format peft --output DIR`: writes an adapter in another library's format.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a Graft adapter checkpoint in another library's format.",
        discussion: """
            --format peft writes a peft LoRA directory (adapter_config.json, adapter_model.safetensors) \
            for the backbone's Hugging Face encoder model (AutoModel): load it with \
            PeftModel.from_pretrained(model, DIR). LoRA adapters are written as they are, MoS adapters \
            de-sharded into plain LoRA first; bottleneck adapters have no peft form. The head is not written.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case peft }

    @Argument(help: "The Graft adapter checkpoint (.h5).")
    var adapter: String
    @Option(help: "The format to write: peft.")
    var format: Format
    @Option(name: .shortAndLong, help: "The directory to write (created if needed).")
    var output: String

    func run() throws {
        if PeftFormat.isAdapterDirectory(adapter) {
            throw ValidationError("\(adapter) is already a peft adapter directory")
        }
        let (header, adapter) = try AdapterCheckpoint.loadAdapter(from: self.adapter)
        let lora: LoRAAdapter
        switch adapter {
        case let plain as LoRAAdapter: lora = plain
        case let sharded as MoSAdapter: lora = sharded.deSharded()
        default: throw ValidationError("\(self.adapter) is a \(header.configuration.method) adapter; peft export supports lora and mos")
        }
        try PeftFormat.write(lora, baseModel: header.backboneName, to: output)
        print("wrote \(output) (peft LoRA, rank \(lora.configuration.rank), \(lora.parameterCount) parameters\(header.headConfiguration == nil ? "" : "; the head is not exported"))")
    }
}
