import ArgumentParser
import Foundation
import Graft

@main
struct Adapt: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adapt",
        abstract: "Parameter-efficient adaptation of frozen transformers.",
        version: Graft.version,
        subcommands: [Import.self, Info.self, Embed.self, Predict.self, Serve.self, DataCommand.self, MLM.self, Train.self, Eval.self, Params.self, Merge.self, Export.self, ContinualCommand.self, Concepts.self]
    )

    static func main() {
        checkStandardOutputAtExit()
        let job: DataParallel?
        do { job = try DataParallel.fromEnvironment() } catch { exit(withError: CommandError("\(error)")) }
        guard let job else { return main(nil) }
        // Under mpirun: rank 0 speaks for the job; a rank that fails stops every rank,
        // since the others would wait for it in the next exchange.
        if job.rank != 0 { _ = dup2(open("/dev/null", O_WRONLY), STDOUT_FILENO) }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if error is CleanExit { exit(withError: error) }
            FileHandle.standardError.write(Data("adapt (rank \(job.rank) of \(job.size)): \(fullMessage(for: error))\n".utf8))
            job.abort(1)
        }
        job.finish()
    }
}
