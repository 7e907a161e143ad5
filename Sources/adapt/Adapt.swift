import ArgumentParser
import Graft

@main
struct Adapt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Parameter-efficient adaptation of frozen transformers.",
        version: Graft.version,
        subcommands: [Import.self, Info.self, Embed.self, Predict.self, DataCommand.self, MLM.self, Train.self, Eval.self, Params.self, Merge.self, Export.self, ContinualCommand.self, Concepts.self]
    )

    static func main() {
        checkStandardOutputAtExit()
        main(nil)
    }
}
