import Foundation
import GraftIO
import GraftTestSupport
import Testing

/// A scratch directory with the tiny backbone and small text and label files.
struct Workspace {
    let directory: String
    var backbone: String { directory + "/tiny.h5" }
    var corpus: String { directory + "/corpus.txt" }
    var labelled: String { directory + "/labelled.jsonl" }

    init() throws {
        directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try TinyBackbone.make().save(to: backbone)
        let words = ["mawu", "a", "ndi", "water", "wind"]
        let lines = (0..<40).map { i in (0..<(3 + i % 4)).map { words[(i * 7 + $0 * 3) % words.count] }.joined(separator: " ") }
        try lines.joined(separator: "\n").write(toFile: corpus, atomically: true, encoding: .utf8)
        let labelled = (0..<48).map { i -> String in
            let label = i % 2 == 0 ? "wet" : "dry"
            let text = label == "wet" ? "water mawu a" : "ndi wind a"
            let split = i < 32 ? "train" : (i < 40 ? "dev" : "test")
            return #"{"text": "\#(text)", "label": "\#(label)", "split": "\#(split)"}"#
        }
        try labelled.joined(separator: "\n").write(toFile: self.labelled, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite struct WorkflowCommands {
    @Test func languageAdapterThenStackedTaskAdapterThenEvaluation() throws {
        let w = try Workspace()
        defer { w.remove() }
        let mlm = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--method", "seq_bn", "--steps", "6",
                                "--batch-size", "4", "--learning-rate", "0.01", "--output", w.directory + "/lang.h5"])
        #expect(mlm.status == 0, "\(mlm.error)")
        #expect(mlm.output.contains("pseudo-perplexity"))
        let invertibleTask = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "seq_bn_inv",
                                           "--stack-on", w.directory + "/lang.h5", "--output", w.directory + "/inv.h5"])
        #expect(invertibleTask.status != 0 && invertibleTask.error.contains("only its first adapter's invertible block"))
        #expect(!FileManager.default.fileExists(atPath: w.directory + "/inv.h5"))
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--method", "lora",
                                  "--stack-on", w.directory + "/lang.h5", "--steps", "20", "--batch-size", "8",
                                  "--learning-rate", "0.01", "--output", w.directory + "/task.h5"])
        #expect(train.status == 0, "\(train.error)")
        #expect(train.output.contains("Stack(language, task)"))
        #expect(train.output.contains("macro-F1"))
        let eval = try runAdapt(["eval", "--backbone", w.backbone, "--adapter", w.directory + "/task.h5",
                                 "--stack-on", w.directory + "/lang.h5", "--data", w.labelled])
        #expect(eval.status == 0, "\(eval.error)")
        #expect(eval.output.contains("accuracy"))
        let info = try runAdapt(["info", w.directory + "/task.h5"])
        #expect(info.status == 0 && info.output.contains("lora"))
    }

    /// A killed run resumed with `--resume` logs each step once: the records its predecessor wrote after the last
    /// checkpoint are dropped, not repeated; a fresh run with the same `--log` starts it anew.
    @Test func resumedRunLogsEachStepOnce() throws {
        let w = try Workspace()
        defer { w.remove() }
        let log = w.directory + "/mlm.jsonl"
        func steps() throws -> [Int] {
            try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { line in
                try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])["step"] as! Int
            }
        }
        let arguments = ["mlm", "--backbone", w.backbone, "--data", w.corpus, "--method", "seq_bn", "--batch-size", "4",
                         "--checkpoint-every", "7", "--output", w.directory + "/lang.h5", "--log", log]
        let killed = Process()
        killed.executableURL = adaptExecutable
        killed.arguments = arguments + ["--steps", "400"]
        killed.standardOutput = FileHandle.nullDevice
        try killed.run()
        // Killed once it has logged steps past its first checkpoint (step 7).
        while killed.isRunning, ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").count < 10 { usleep(500) }
        kill(killed.processIdentifier, SIGKILL)
        killed.waitUntilExit()
        #expect(killed.terminationReason == .uncaughtSignal, "the run ended before it was killed")
        let resumed = try runAdapt(arguments + ["--steps", "400", "--resume"])
        #expect(resumed.status == 0, "\(resumed.error)")
        let resumedAt = resumed.output.firstMatch(of: /resuming from step (\d+) of 400/).flatMap { Int($0.1) }
        #expect(resumedAt.map { $0 > 0 && $0 % 7 == 0 } == true, "\(resumed.output)")
        #expect(try steps() == Array(1...400))
        let fresh = try runAdapt(arguments + ["--steps", "3"])
        #expect(fresh.status == 0, "\(fresh.error)")
        #expect(try steps() == [1, 2, 3])
        try "not a log\n".write(toFile: log, atomically: true, encoding: .utf8)
        let other = try runAdapt(arguments + ["--steps", "3"])
        #expect(other.status != 0 && other.error.contains("line 1: not a training log record"), "\(other.error)")
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "not a log\n")
    }

    /// `adapt train` runs LoRA at its own default peak learning rate (3e-3), the bottleneck adapters at 1e-3, full
    /// fine-tuning at 3e-5, and `--learning-rate` overrides each.
    @Test func eachMethodTrainsAtItsDefaultLearningRate() throws {
        let w = try Workspace()
        defer { w.remove() }
        func firstLearningRate(_ name: String, _ flags: [String]) throws -> Double {
            let log = w.directory + "/\(name).jsonl"
            let run = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--steps", "4", "--warmup-steps", "0",
                                    "--batch-size", "8", "--output", w.directory + "/\(name).h5", "--log", log] + flags)
            #expect(run.status == 0, "\(run.error)")
            #expect(run.output.contains("4 steps of 8 (1 epoch)"), "\(run.output)")  // 32 training examples
            let first = try #require(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").first)
            let record = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
            return try #require(record["learningRate"] as? Double)
        }
        for (name, flags, expected) in [("lora", ["--method", "lora"], 3e-3), ("seq_bn", ["--method", "seq_bn"], 1e-3),
                                         ("full", ["--method", "full"], 3e-5),
                                         ("lora-set", ["--method", "lora", "--learning-rate", "0.0005"], 5e-4)] {
            let rate = try firstLearningRate(name, flags)
            #expect(abs(rate - expected) < expected * 1e-6, "\(name): \(rate)")
        }
    }

    /// Output that cannot be written (a full disk) is an error with a message and a non-zero status, never a trap or a silent 0.
    @Test func unwritableOutputIsAnError() throws {
        let w = try Workspace()
        defer { w.remove() }
        let info = try runAdapt(["info", w.backbone], outputFile: "/dev/full")
        #expect(info.status == 74 && info.error.contains("cannot write to standard output"), "\(info.status) \(info.error)")
        let embed = try runAdapt(["embed", "--backbone", w.backbone], input: Data("mawu\n".utf8), outputFile: "/dev/full")
        #expect(embed.status != 0 && embed.error.contains("cannot write to standard output"), "\(embed.status) \(embed.error)")
        let log = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only", "--steps", "2", "--log", "/dev/full"])
        #expect(log.status != 0 && log.error.contains("cannot write to /dev/full"), "\(log.status) \(log.error)")
    }

    /// Inputs that cannot be used are named before any work: a directory as --output, a config.json of the wrong types.
    @Test func unusableInputsAreNamedBeforeWork() throws {
        let w = try Workspace()
        defer { w.remove() }
        let directory = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--output", w.directory])
        #expect(directory.status != 0 && directory.error.contains("it is a directory") && !directory.output.contains("step"), "\(directory.error)")
        let config = w.directory + "/config.json"
        try #"{"vocab_size": "many", "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}"#
            .write(toFile: config, atomically: true, encoding: .utf8)
        let params = try runAdapt(["params", "--config", config])
        #expect(params.status != 0 && params.error.contains("\(config): at vocab_size: expected Int"), "\(params.error)")
        #expect(!params.error.contains("DecodingError") && !params.error.contains("Usage:"), "\(params.error)")
        // A run without an output keeps no checkpoint (none in the working directory), so it cannot resume.
        let headOnly = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only", "--steps", "2", "--checkpoint-every", "1"])
        #expect(headOnly.status == 0, "\(headOnly.error)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: FileManager.default.currentDirectoryPath).allSatisfy { !$0.hasPrefix("head-only-") })
        let resume = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only", "--steps", "2", "--resume"])
        #expect(resume.status != 0 && resume.error.contains("--resume needs --output"), "\(resume.error)")
        for (arguments, flag) in [(["eval", "--backbone", w.backbone, "--data", w.labelled, "--examples", "0"], "--examples"),
                                  (["train", "--backbone", w.backbone, "--data", w.labelled, "--head-only", "--dev-examples", "0"], "--dev-examples"),
                                  (["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only", "--train-texts", "0"], "--train-texts")] {
            let zero = try runAdapt(arguments)
            #expect(zero.status != 0 && zero.error.contains("\(flag) must be positive"), "\(arguments): \(zero.error)")
        }
    }

    @Test func settingsFileIsEquivalentToFlags() throws {
        let w = try Workspace()
        defer { w.remove() }
        let settings = w.directory + "/settings.json"
        try #"{"steps": 3, "batch-size": 4, "learning-rate": 0.01, "seed": 5}"#.write(toFile: settings, atomically: true, encoding: .utf8)
        let fromFile = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only", "--config", settings])
        let fromFlags = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only",
                                      "--steps", "3", "--batch-size", "4", "--learning-rate", "0.01", "--seed", "5"])
        #expect(fromFile.status == 0 && fromFlags.status == 0)
        let result = { (text: String) in text.split(separator: "\n").first { $0.hasPrefix("held-out") } }
        #expect(result(fromFile.output) != nil && result(fromFile.output) == result(fromFlags.output))
        // The file is read by the flags' own definitions: a key no flag has, or a value of the wrong type, is an error.
        for (bad, message) in [(#"{"learning_rate": 0.5}"#, "learning_rate"), (#"{"steps": 2.5}"#, "steps"),
                               (#"{"resume": true}"#, "give --resume on the command line")] {
            try bad.write(toFile: settings, atomically: true, encoding: .utf8)
            let refused = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--head-only", "--config", settings])
            #expect(refused.status != 0 && refused.error.contains(message), "\(bad): \(refused.error)")
        }
    }

    @Test func recomputedLayersTrainTheSameAdapter() throws {
        let w = try Workspace()
        defer { w.remove() }
        func train(_ extra: [String]) throws -> String {
            let run = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--method", "lora", "--steps", "3",
                                    "--batch-size", "4", "--learning-rate", "0.01", "--seed", "2",
                                    "--output", w.directory + "/lang.h5"] + extra)
            #expect(run.status == 0, "\(run.error)")
            return run.output.split(separator: "\n").first { $0.hasPrefix("held-out") }.map(String.init) ?? "no result"
        }
        let kept = try train([]), recomputed = try train(["--recompute-layers"])
        #expect(kept.contains("pseudo-perplexity") && kept == recomputed)
    }

    @Test func outputVocabularyAndTokenizerCoverageAreReported() throws {
        let w = try Workspace()
        defer { w.remove() }
        let common = ["mlm", "--backbone", w.backbone, "--head-only", "--steps", "2", "--batch-size", "4"]
        let corpus = try runAdapt(common + ["--data", w.corpus])
        #expect(corpus.status == 0, "\(corpus.error)")
        // The corpus's 4 words, 4 letters of "wind", "▁", <s>, <pad>, </s> and <mask> out of the decoder's 21 rows.
        #expect(corpus.output.contains("output vocabulary: 13 of 21 tokens (the training corpus plus special tokens)"))
        #expect(corpus.output.contains("tokenizer coverage: 0.00% of"))
        let full = try runAdapt(common + ["--data", w.corpus, "--output-vocabulary", "full"])
        #expect(full.status == 0 && !full.output.contains("output vocabulary:"))
        // Letters the toy vocabulary lacks become <unk>: a warning on standard error.
        let unknown = w.directory + "/unknown.txt"
        try (0..<40).map { "mawu zzq \($0 % 2 == 0 ? "a" : "ndi")" }.joined(separator: "\n")
            .write(toFile: unknown, atomically: true, encoding: .utf8)
        let poor = try runAdapt(common + ["--data", unknown])
        #expect(poor.status == 0, "\(poor.error)")
        #expect(poor.error.contains("the tokenizer does not cover this corpus well"))
    }

    @Test func badInputGetsAClearMessage() throws {
        let w = try Workspace()
        defer { w.remove() }
        let missing = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.directory + "/none.txt", "--head-only", "--steps", "1"])
        #expect(missing.status != 0 && missing.error.contains("none.txt"))
        let empty = w.directory + "/empty.txt"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let emptyRun = try runAdapt(["mlm", "--backbone", w.backbone, "--data", empty, "--head-only", "--steps", "1"])
        #expect(emptyRun.status != 0 && emptyRun.error.contains("holds no examples"))
        let unwritable = try runAdapt(["mlm", "--backbone", w.backbone, "--data", w.corpus, "--steps", "1",
                                       "--output", "/nonexistent/dir/lang.h5"])
        #expect(unwritable.status != 0 && unwritable.error.contains("cannot write /nonexistent/dir/lang.h5"))
        let noBackbone = try runAdapt(["mlm", "--backbone", w.directory + "/none.h5", "--data", w.corpus, "--head-only"])
        #expect(noBackbone.status != 0 && noBackbone.error.contains("none.h5"))
    }

    /// The stacked-collapse remedy: dev is scored before training and after every epoch,
    /// and the best evaluation's parameters are what the run ends with, so a run that
    /// degenerates (here a learning rate of 50) returns the linear-probe start, not the collapse.
    @Test func aCollapsingRunEndsWithItsBestDevModel() throws {
        let w = try Workspace()
        defer { w.remove() }
        let probe = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--head-only"])
        #expect(probe.status == 0, "\(probe.error)")
        #expect(probe.output.contains("linear probe on the starting features: dev macro-F1 1.0000"))
        #expect(probe.output.contains("macro-F1 1.0000 (8 examples)"))
        let wild = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--epochs", "3", "--batch-size", "8",
                                 "--learning-rate", "50", "--output", w.directory + "/task.h5"])
        #expect(wild.status == 0, "\(wild.error)")
        #expect(wild.output.contains("12 steps of 8 (3 epochs)"), "\(wild.output)")
        #expect(wild.output.contains("best evaluation 1.0000"))
        #expect(wild.output.contains("macro-F1 1.0000 (8 examples)"), "\(wild.output)")
        let both = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--epochs", "1", "--steps", "3",
                                 "--output", w.directory + "/task.h5"])
        #expect(both.status != 0 && both.error.contains("give --steps or --epochs, not both"))
    }

    @Test func evaluationLabelsTrainingNeverSawAreRejected() throws {
        let w = try Workspace()
        defer { w.remove() }
        let train = try runAdapt(["train", "--backbone", w.backbone, "--data", w.labelled, "--steps", "2",
                                  "--batch-size", "8", "--output", w.directory + "/task.h5"])
        #expect(train.status == 0, "\(train.error)")
        let other = w.directory + "/other.jsonl"
        try [#"{"text": "a", "label": "wet", "split": "train"}"#, #"{"text": "b", "label": "dry", "split": "train"}"#,
             #"{"text": "c", "label": "frozen", "split": "test"}"#].joined(separator: "\n").write(toFile: other, atomically: true, encoding: .utf8)
        let eval = try runAdapt(["eval", "--backbone", w.backbone, "--adapter", w.directory + "/task.h5", "--data", other])
        #expect(eval.status != 0 && eval.error.contains("frozen") && !eval.error.contains("Usage:"), "\(eval.error)")
    }
}
