import Foundation
import GraftAdapters
import GraftIO
import Testing

@Suite struct FullFineTuningCommands {
    /// `train --method full` writes the fine-tuned backbone with its head; `eval` scores that file
    /// alone and reproduces the test report that training printed.
    @Test func trainWritesAFineTunedModelThatEvalReproduces() throws {
        let w = try Workspace()
        defer { w.remove() }
        let output = w.directory + "/full.h5"
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "full", "--steps", "6",
                                  "--batch-size", "8", "--output", output])
        #expect(train.status == 0, "\(train.error)")
        #expect(train.output.contains("full fine-tuning (word embeddings frozen)"), "\(train.output)")
        #expect(!FileManager.default.fileExists(atPath: output + ".training.h5"))
        let model = try FineTunedModel.load(from: output)
        #expect(model.backbone.name == "tiny-xlmr+fine-tuned" && model.startedFrom.name == "tiny-xlmr")
        let eval = try runAdapt(["eval", "--backbone", output, "--data", w.labelled])
        #expect(eval.status == 0, "\(eval.error)")
        let report = { (text: String) in text.components(separatedBy: "test split:\n").last! }
        #expect(eval.output.contains("fine-tuned from tiny-xlmr"))
        #expect(eval.output.hasSuffix(report(train.output)), "\(eval.output)\n---\n\(train.output)")
        let info = try runAdapt(["info", output])
        #expect(info.status == 0 && info.output.contains("head: sequence_classification, 2 labels: "), "\(info.output)")
    }

    @Test func misuseIsRefusedAndNeverOverwritesAnInput() throws {
        let w = try Workspace()
        defer { w.remove() }
        let base = ["train", "--backbone", w.backbone, "--data", w.labelled, "--steps", "2"]
        let cases: [([String], String)] = [
            (["--method", "full", "--output", w.backbone], "is the input \(w.backbone)"),
            (["--method", "full", "--output", w.labelled], "is the input \(w.labelled)"),
            (["--method", "full", "--rank", "4", "--output", w.directory + "/a.h5"], "--rank does not apply to --method full"),
            (["--method", "full", "--stack-on", w.backbone, "--output", w.directory + "/a.h5"], "it takes no --head-only or --stack-on"),
            (["--word-embeddings", "train", "--output", w.directory + "/a.h5"], "--word-embeddings applies to --method full only"),
        ]
        for (extra, message) in cases {
            let run = try runAdapt(base + extra)
            #expect(run.status != 0 && run.error.contains(message), "\(extra): \(run.error)")
        }
        #expect(try Backbone.load(from: w.backbone).name == "tiny-xlmr")
        let eval = try runAdapt(["eval", "--backbone", w.backbone, "--data", w.labelled])
        #expect(eval.status != 0 && eval.error.contains("without a task head"), "\(eval.error)")
    }

    /// `mlm`, `merge` and a training log refuse to write over an input, before doing any work.
    @Test func outputsThatAreInputsAreRefusedByEveryWritingCommand() throws {
        let w = try Workspace()
        defer { w.remove() }
        let before = try Data(contentsOf: URL(fileURLWithPath: w.corpus))
        let runs: [[String]] = [
            ["train", "--backbone", w.backbone, "--data", w.labelled, "--steps", "2", "--output", w.directory + "/a.h5", "--log", w.backbone],
            ["mlm", "--backbone", w.backbone, "--data", w.corpus, "--steps", "2", "--output", w.backbone],
            ["mlm", "--backbone", w.backbone, "--data", w.corpus, "--steps", "2", "--head-only", "--log", w.corpus],
            ["merge", w.directory + "/missing.h5", "--backbone", w.backbone, "--output", w.backbone],
        ]
        for arguments in runs {
            let run = try runAdapt(arguments)
            #expect(run.status != 0 && run.error.contains("is the input"), "\(arguments): \(run.error)")
        }
        #expect(try Backbone.load(from: w.backbone).name == "tiny-xlmr")
        #expect(try Data(contentsOf: URL(fileURLWithPath: w.corpus)) == before)
    }
}
