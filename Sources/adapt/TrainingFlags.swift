import ArgumentParser
import Foundation
import Graft

/// Training settings shared by `adapt mlm` and `adapt train`. A JSON file given
/// with `--config` may hold any of them under the flag's name
/// (`{"steps": 200, "learning-rate": 0.0001}`): it is read by these same option
/// definitions, so an unknown key or a value of the wrong type is an error.
/// Flags on the command line win over the file.
struct TrainingFlags: ParsableArguments {
    static let defaultBatchSize = 16
    static let defaultMaxLength = 128
    private static let defaults = TrainingOptions()

    @Option(help: "A JSON file of settings, keyed by flag name (e.g. {\"steps\": 200}); explicit flags override it.")
    var config: String?

    @Option(help: "Optimizer updates to run (instead of --epochs).") var steps: Int?
    @Option(help: "Passes over the training data (instead of --steps; fractions allowed).") var epochs: Double?
    @Option(help: "Examples per micro-batch (default \(defaultBatchSize)).") var batchSize: Int?
    @Option(help: "Peak AdamW learning rate.") var learningRate: Float?
    @Option(help: "Linear warm-up steps before linear decay to zero (instead of --warmup-fraction).") var warmupSteps: Int?
    @Option(help: "Linear warm-up over this fraction of the run, then linear decay to zero.") var warmupFraction: Float?
    @Option(help: "AdamW decoupled weight decay (default \(defaults.weightDecay)).") var weightDecay: Float?
    @Option(help: "Micro-batches per update, their gradients averaged (default \(defaults.gradientAccumulation)).")
    var gradientAccumulation: Int?
    @Option(help: "Clip the global gradient norm to this value (default \(defaults.maxGradientNorm ?? 0); 0 disables).")
    var maxGradientNorm: Float?
    @Option(help: "Tokens per text; longer texts are cut (default \(defaultMaxLength)).") var maxLength: Int?
    @Option(help: "Evaluate every this many steps (default: only at the end).") var evaluateEvery: Int?
    @Option(help: "Stop after this many evaluations without improvement (default: never).") var patience: Int?
    @Option(help: "Write a training checkpoint every this many steps (default: never).") var checkpointEvery: Int?
    @Option(help: "Seed of every random choice: initialisation, data order, masking, dropout (default \(defaults.seed)).")
    var seed: UInt64?
    @OptionGroup var threads: ThreadsOption
    @Option(help: "Append one JSON object per step (loss, learning rate, gradient norm, throughput, evaluation) to this file.")
    var log: String?
    @Flag(help: "Recompute each encoder layer's activations in backward instead of keeping them: the same result in less memory, for one more forward pass of the encoder layers.")
    var recomputeLayers = false
    @Flag(help: "Continue from the training checkpoint (OUTPUT.training.h5) exactly where it stopped.")
    var resume = false

    /// The files a run writing `output` writes: it, its training checkpoint and the log.
    func files(writtenWith output: String?) -> [String] {
        (output.map { [$0, $0 + ".training.h5"] } ?? []) + (log.map { [$0] } ?? [])
    }

    /// A command's defaults: the run's length (epochs or steps), learning rate and warm-up.
    struct Defaults {
        var length: Length
        var learningRate: Float
        var warmupFraction: Float
        enum Length { case epochs(Double), steps(Int) }
    }

    /// The settings of the `--config` file, parsed as the flags they name (all unset without a file).
    private func fileSettings() throws -> TrainingFlags {
        guard let config else { return try TrainingFlags.parse([]) }
        let settings: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any] else {
                throw CommandError("expected a JSON object")
            }
            settings = object
        } catch {
            throw CommandError("cannot read the settings file \(config): \(error)")
        }
        var arguments: [String] = []
        for (key, value) in settings.sorted(by: { $0.key < $1.key }) {
            guard !["config", "log", "resume", "recompute-layers"].contains(key) else {
                throw ValidationError("the settings file \(config) cannot set \"\(key)\": give --\(key) on the command line")
            }
            guard value is String || value is NSNumber else {
                throw CommandError("the settings file \(config) cannot set \"\(key)\" to \(value)")
            }
            arguments += ["--\(key)", "\(value)"]
        }
        do { return try TrainingFlags.parse(arguments) } catch {
            throw CommandError("the settings file \(config): \(TrainingFlags.message(for: error))")
        }
    }

    /// The resolved settings: flags, then the config file, then `defaults`. A run
    /// sized by epochs gets its steps from ``TrainingOptions/sized(batchesPerEpoch:)``
    /// once the data is loaded.
    func resolve(defaults: Defaults) throws -> (options: TrainingOptions, batchSize: Int, maxLength: Int) {
        Memory.reuseLargeAllocations()
        let file = try fileSettings()
        var options = TrainingOptions()
        let (steps, epochs) = (steps ?? file.steps, epochs ?? file.epochs)
        guard steps == nil || epochs == nil else { throw ValidationError("give --steps or --epochs, not both") }
        switch (steps, epochs, defaults.length) {
        case (let steps?, _, _), (nil, nil, .steps(let steps)): options.steps = steps
        case (nil, let epochs?, _), (nil, nil, .epochs(let epochs)): options.epochs = epochs
        }
        let (warmupSteps, warmupFraction) = (warmupSteps ?? file.warmupSteps, warmupFraction ?? file.warmupFraction)
        guard warmupSteps == nil || warmupFraction == nil else {
            throw ValidationError("give --warmup-steps or --warmup-fraction, not both")
        }
        options.warmupSteps = warmupSteps ?? 0
        options.warmupFraction = warmupSteps == nil ? warmupFraction ?? defaults.warmupFraction : nil
        options.learningRate = learningRate ?? file.learningRate ?? defaults.learningRate
        options.weightDecay = weightDecay ?? file.weightDecay ?? options.weightDecay
        options.gradientAccumulation = gradientAccumulation ?? file.gradientAccumulation ?? options.gradientAccumulation
        if let clip = maxGradientNorm ?? file.maxGradientNorm {
            guard clip >= 0 else { throw ValidationError("--max-gradient-norm must be positive (or 0 to disable clipping), got \(clip)") }
            options.maxGradientNorm = clip > 0 ? clip : nil
        }
        options.evaluateEvery = evaluateEvery ?? file.evaluateEvery
        options.patience = patience ?? file.patience
        options.checkpointEvery = checkpointEvery ?? file.checkpointEvery
        options.seed = seed ?? file.seed ?? options.seed
        do { _ = try options.sized(batchesPerEpoch: 1) } catch { throw ValidationError("\(error)") }
        let batchSize = batchSize ?? file.batchSize ?? Self.defaultBatchSize
        let maxLength = maxLength ?? file.maxLength ?? Self.defaultMaxLength
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        guard maxLength >= 4 else { throw ValidationError("--max-length must be at least 4, got \(maxLength)") }
        try (threads.threads == nil ? file.threads : threads).apply()
        return (options, batchSize, maxLength)
    }
}

/// One command's training run: epochs of length-bucketed batches of the
/// training examples, a `Trainer` with its checkpoint (resumed with `--resume`),
/// progress on standard output and in `--log`.
struct TrainingRun {
    let batches: EpochBatches
    /// The resolved options, sized to the data (steps from epochs, warm-up from its fraction).
    var options: TrainingOptions
    /// The MPI job the run is shared with, when started by `mpirun` (see `DataParallel`).
    let job: DataParallel?

    init(lengths: [Int], batchSize: Int, options resolved: TrainingOptions) throws {
        batches = EpochBatches(lengths: lengths, batchSize: batchSize, seed: resolved.seed)
        options = try resolved.sized(batchesPerEpoch: batches.batchesPerEpoch)
        job = try DataParallel.fromEnvironment()
    }

    /// Whether this process writes the run's files (the output, checkpoints, the log): alone, or rank 0 of a job.
    var writesFiles: Bool { (job?.rank ?? 0) == 0 }

    /// Epochs the run's updates make.
    var epochs: Double { Double(options.steps * options.gradientAccumulation) / Double(batches.batchesPerEpoch) }

    /// Trains `parameters` on `examples` with `loss` (of a batch, a seed for its dropout and masking, and the
    /// tape), scoring `evaluate` when the options say, and returns the finished trainer. The training
    /// checkpoint goes to `checkpoint` (a run without an output file keeps none, and cannot resume).
    ///
    /// Under `mpirun`, every rank must run the same command on the same `backbone` (its checksum):
    /// checked first; each update's micro-batches are then shared by the ranks (`DataParallel`).
    func train<Example>(_ parameters: [(name: String, parameter: Parameter)], examples: [Example], flags: TrainingFlags,
                        checkpoint: String?, label: String, backbone: String,
                        loss: ([Example], UInt64, Tape) -> (loss: Variable, tokens: Int),
                        evaluate: (() -> Double)? = nil) throws -> Trainer {
        if let job {
            let settings = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
            try job.checkSameRun(([settings, backbone] + CommandLine.arguments).joined(separator: "\u{0}"))
        }
        let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: checkpoint)
        trainer.dataParallel = job
        if flags.resume {
            guard let checkpoint else { throw ValidationError("--resume needs --output: a run without an output keeps no checkpoint") }
            try trainer.resume(from: checkpoint)
            print("resuming from step \(trainer.step) of \(options.steps) (\(checkpoint))")
        }
        let progress = try ProgressReporter(total: options.steps, startStep: trainer.step, label: label, logPath: writesFiles ? flags.log : nil)
        let (batches, accumulation) = (batches, options.gradientAccumulation)
        try trainer.run(
            loss: { step, micro, tape in
                let (value, tokens) = loss(batches.batch(step * accumulation + micro).map { examples[$0] }, trainer.seed(step: step, micro: micro), tape)
                return (value, tokens)
            },
            evaluate: evaluate.map { evaluate in { _ in evaluate() } },
            onStep: progress.report)
        return trainer
    }
}

/// Shows training progress: a self-updating bar on a terminal, a line every
/// tenth of the run otherwise, and JSON lines in `--log` if requested: one per
/// step the run's parameters went through, each step once (see `init`).
final class ProgressReporter {
    let total: Int
    let label: String
    let log: FileHandle?
    let logPath: String?
    let isTerminal = isatty(STDOUT_FILENO) != 0
    let started = ContinuousClock.now
    let startStep: Int

    /// A reporter for a run at `startStep` (0 for a fresh one). The log at `logPath` keeps the records of
    /// the steps up to `startStep` (those of the checkpoint a resumed run starts from) and loses the rest:
    /// a fresh run starts an empty log, and a resumed one drops what its killed predecessor logged after
    /// its last checkpoint, steps that the resumed run repeats.
    init(total: Int, startStep: Int, label: String, logPath: String?) throws {
        self.total = total
        self.label = label
        self.startStep = startStep
        self.logPath = logPath
        if let logPath {
            if !FileManager.default.fileExists(atPath: logPath) {
                guard FileManager.default.createFile(atPath: logPath, contents: nil) else {
                    throw CommandError("cannot create the log file \(logPath)")
                }
            } else if let kept = try Self.log(at: logPath, through: startStep) {
                try writeAtomically(kept, to: logPath)
            }
            log = FileHandle(forWritingAtPath: logPath)
            _ = try log?.seekToEnd()
        } else {
            log = nil
        }
    }

    /// The log at `path` without its records of steps after `step`; `nil` if it has none to drop, or is
    /// not a regular file (a device such as `/dev/stdout` is written to as it is).
    private static func log(at path: String, through step: Int) throws -> Data? {
        guard (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeRegular else { return nil }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n")
        func record(_ line: Substring) -> StepRecord? { try? JSONDecoder().decode(StepRecord.self, from: Data(line.utf8)) }
        // A run killed while it wrote a record leaves that line unfinished: it goes with the steps after `step`.
        let torn = !text.hasSuffix("\n") && lines.last.map { record($0) == nil } == true
        if torn { lines.removeLast() }
        let steps = try lines.enumerated().map { number, line in
            guard let record = record(line) else {
                throw CommandError("\(path), line \(number + 1): not a training log record; give --log another file")
            }
            return record.step
        }
        guard torn || steps.contains(where: { $0 > step }) else { return nil }
        return Data(zip(lines, steps).filter { $0.1 <= step }.map { $0.0 + "\n" }.joined().utf8)
    }

    func report(_ record: StepRecord) throws {
        if let log, let logPath { try write(try JSONEncoder().encode(record) + Data("\n".utf8), to: log, name: logPath) }
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        let done = record.step - startStep
        let eta = done > 0 ? elapsed / Double(done) * Double(total - record.step) : 0
        let evaluation = record.evaluation.map { String(format: " | eval %.4f", $0) } ?? ""
        let line = String(format: "%@ step %d/%d | loss %.4f | %.0f tok/s | ETA %@%@", label, record.step, total,
                          record.loss, record.throughput, formatDuration(eta), evaluation)
        if isTerminal {
            let width = 20, filled = width * record.step / max(total, 1)
            let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
            print("\r[\(bar)] \(line)", terminator: record.step == total ? "\n" : "")
        } else if record.step == total || record.evaluation != nil || record.step % max(1, total / 10) == 0 {
            print(line)
        }
        fflush(nil)  // show progress at once, also through a pipe (`| tee`)
    }
}

/// A seed of its own for one purpose (e.g. one adapter's initialisation) from the run's `--seed`,
/// so that two adapters made with the same `--seed` do not start from the same draws.
func derivedSeed(_ seed: UInt64, _ purpose: String) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325  // FNV-1a of the purpose
    for byte in purpose.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return seed ^ hash
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 60 ? "\(s / 60)m\(String(format: "%02d", s % 60))s" : "\(s)s"
}
