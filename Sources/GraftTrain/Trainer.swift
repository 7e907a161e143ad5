import Foundation
import GraftAutodiff
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor

/// The settings of a training run (the same names serve as flags and as keys of a config file).
public struct TrainingOptions: Codable, Sendable, Equatable {
    /// Optimizer updates to run (derived from `epochs` by ``sized(batchesPerEpoch:)`` when that is set).
    public var steps: Int = 1000
    /// Passes over the training data; `nil` when the run is sized by `steps`.
    public var epochs: Double?
    /// The peak AdamW learning rate, reached after warm-up (default `1e-4`; `adapt train` uses 1e-3,
    /// 3e-3 for LoRA and 3e-5 for `--method full`).
    public var learningRate: Float = 1e-4
    /// Linear warm-up steps, then linear decay to zero at `steps`.
    public var warmupSteps: Int = 0
    /// Warm-up as a fraction of the run; when set, ``sized(batchesPerEpoch:)`` derives `warmupSteps` from it.
    public var warmupFraction: Float?
    /// AdamW's decoupled weight decay (default 0.01).
    public var weightDecay: Float = 0.01
    /// Micro-batches whose gradients are summed (and averaged) per update.
    public var gradientAccumulation: Int = 1
    /// Global gradient-norm clipping; `nil` disables it.
    public var maxGradientNorm: Float? = 1
    /// Evaluate every this many steps (and at the end); `nil` only at the end.
    public var evaluateEvery: Int?
    /// Stop after this many evaluations without improvement; `nil` never stops early.
    public var patience: Int?
    /// Write a checkpoint every this many steps; `nil` never.
    public var checkpointEvery: Int?
    /// Evaluate before the first update too, and end the run with the parameters
    /// of the best evaluation (also when the loss diverges), not the last.
    public var restoresBest = false
    /// The run's seed; every micro-batch's randomness derives from it (``Trainer/seed(step:micro:)``).
    public var seed: UInt64 = 0

    /// Options with every setting at its default (1000 steps at learning rate `1e-4`, no warm-up,
    /// weight decay 0.01, clipping at norm 1, seed 0).
    public init() {}

    /// These options with `steps` derived from `epochs` (rounded up to whole updates
    /// of `gradientAccumulation` micro-batches) and `warmupSteps` from `warmupFraction`.
    public func sized(batchesPerEpoch: Int) throws -> TrainingOptions {
        var sized = self
        if let epochs {
            guard epochs > 0, epochs.isFinite else { throw ConfigurationError("epochs must be positive, got \(epochs)") }
            guard batchesPerEpoch > 0 else { throw TrainingError.emptyData("an epoch has no batches") }
            sized.steps = Swift.max(1, Int((epochs * Double(batchesPerEpoch) / Double(gradientAccumulation)).rounded(.up)))
        }
        if let warmupFraction {
            guard warmupFraction >= 0, warmupFraction < 1 else {
                throw ConfigurationError("warm-up fraction must be in [0, 1), got \(warmupFraction)")
            }
            sized.warmupSteps = Int((warmupFraction * Float(sized.steps)).rounded())
        }
        try sized.validate()
        return sized
    }

    /// Throws if a setting is out of range.
    public func validate() throws {
        func require(_ condition: Bool, _ message: String) throws {
            if !condition { throw ConfigurationError(message) }
        }
        try require(steps > 0, "steps must be positive, got \(steps)")
        try require(learningRate > 0 && learningRate.isFinite, "learning rate must be positive, got \(learningRate)")
        try require(warmupSteps >= 0 && warmupSteps <= steps, "warm-up steps must be in 0...\(steps), got \(warmupSteps)")
        try require(gradientAccumulation > 0, "gradient accumulation must be positive, got \(gradientAccumulation)")
        try require(maxGradientNorm.map { $0 > 0 } ?? true, "max gradient norm must be positive")
        try require(evaluateEvery.map { $0 > 0 } ?? true, "evaluate-every must be positive")
        try require(checkpointEvery.map { $0 > 0 } ?? true, "checkpoint-every must be positive")
        try require(patience.map { $0 > 0 } ?? true, "patience must be positive")
    }
}

/// What went wrong in training.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// The loss or gradient norm became NaN or infinite at update `step` (1-based); `lastCheckpoint`
    /// is the training checkpoint to resume from, if one was written. Not thrown when `restoresBest` has a
    /// best evaluation to return to: `run` then stops and sets `divergedStep`.
    case nonFiniteLoss(step: Int, lastCheckpoint: String?)
    /// The checkpoint `file` cannot resume this run; `reason` says why.
    case checkpointMismatch(file: String, reason: String)
    /// There is nothing to train on; the string says what is empty.
    case emptyData(String)

    /// A sentence for the command line saying what happened and what to do.
    public var description: String {
        switch self {
        case let .nonFiniteLoss(step, checkpoint):
            "the loss or its gradient became NaN or infinite at step \(step); training stopped"
                + (checkpoint.map { ". The last good checkpoint is \($0) (resume with --resume)" } ?? " (no checkpoint was written yet)")
        case let .checkpointMismatch(file, reason): "cannot resume from \(file): \(reason)"
        case .emptyData(let what): "no training data: \(what)"
        }
    }
}

/// One optimizer update, as logged.
public struct StepRecord: Codable, Sendable, Equatable {
    /// The number of updates done, this one included (1 for the first).
    public let step: Int
    /// The mean loss of the update's micro-batches.
    public let loss: Float
    /// The learning rate this update used, as the schedule set it.
    public let learningRate: Float
    /// The global gradient norm before clipping.
    public let gradientNorm: Float
    /// Tokens (or examples) processed per second in this step.
    public let throughput: Double
    /// The evaluation score after this step, if one ran.
    public var evaluation: Double?
    /// Seconds this rank spent exchanging and summing gradients (data-parallel runs only).
    public var exchangeSeconds: Double?
    /// Seconds the update took, exchange included (absent in logs written before it was recorded).
    public var seconds: Double?
}

/// A synchronous training loop: AdamW with linear warm-up and decay, gradient
/// accumulation and clipping, periodic evaluation with early stopping, atomic
/// checkpoints and exact resumption.
///
/// Determinism: everything random in a step (masking, dropout, data order)
/// must be derived from `seed(step:micro:)`, so a resumed run repeats the
/// uninterrupted one exactly.
public final class Trainer {
    /// The trainable parameters, named as in checkpoints.
    public let parameters: [(name: String, parameter: Parameter)]
    /// The run's validated settings.
    public let options: TrainingOptions
    /// AdamW over `parameters`; its learning rate follows the linear warm-up and decay schedule.
    public let optimizer: AdamW
    /// Path of the training checkpoint, if checkpoints are written.
    public let checkpointPath: String?
    /// The MPI job this run is shared with (`DataParallel.fromEnvironment()`); `nil` trains alone.
    /// Only rank 0 writes checkpoints.
    public var dataParallel: DataParallel?
    /// The last step's exchange time (`StepRecord.exchangeSeconds`).
    private var lastExchangeSeconds: Double?
    /// Updates done so far (restored by ``resume(from:)``).
    public private(set) var step = 0
    /// One record per update done, in order (restored by ``resume(from:)``).
    public private(set) var history: [StepRecord] = []
    /// The highest evaluation score so far; `nil` before the first evaluation.
    public private(set) var bestEvaluation: Double?
    /// The step after which the best evaluation ran (0: before training).
    public private(set) var bestStep: Int?
    /// The step whose loss or gradient norm was NaN or infinite, if the run diverged and was
    /// ended with the best evaluation's parameters (`restoresBest`).
    public private(set) var divergedStep: Int?
    private var evaluationsWithoutImprovement = 0
    /// The parameter values of the best evaluation (when `restoresBest`).
    private var bestValues: [Tensor]?

    /// A trainer of `parameters` under `options`, with a fresh AdamW (their learning rate and
    /// weight decay); checkpoints go to `checkpointPath` if given.
    /// - Throws: `ConfigurationError` if `options` are invalid.
    public init(parameters: [(name: String, parameter: Parameter)], options: TrainingOptions, checkpointPath: String? = nil) throws {
        try options.validate()
        self.parameters = parameters
        self.options = options
        self.checkpointPath = checkpointPath
        optimizer = AdamW(parameters: parameters.map(\.parameter), learningRate: options.learningRate,
                          weightDecay: options.weightDecay)
    }

    /// The seed of micro-batch `micro` of step `step` (for masking, dropout, sampling).
    public func seed(step: Int, micro: Int) -> UInt64 {
        options.seed &+ UInt64(step) &* 0x9E37_79B9 &+ UInt64(micro) &* 0x85EB_CA6B
    }

    /// Runs until `options.steps` (or early stopping).
    ///
    /// - Parameters:
    ///   - loss: the loss of micro-batch `micro` of step `step`, recorded on `tape`,
    ///     and the number of tokens (or examples) it covered.
    ///   - evaluate: a score where higher is better (e.g. macro-F1, or minus a loss).
    ///   - onStep: called after every update (progress display, logs).
    /// - Returns: the evaluation score of the best evaluation, if any.
    @discardableResult
    public func run(
        loss: (_ step: Int, _ micro: Int, _ tape: Tape) throws -> (loss: Variable, items: Int),
        evaluate: ((_ step: Int) throws -> Double)? = nil,
        onStep: (StepRecord) throws -> Void = { _ in }
    ) throws -> Double? {
        let schedule = LearningRateSchedule.linear(warmupSteps: options.warmupSteps, totalSteps: options.steps)
        let clock = ContinuousClock()
        if options.restoresBest, step == 0, bestEvaluation == nil, let evaluate {
            _ = record(evaluation: try evaluate(0))
        }
        defer { if options.restoresBest { restoreBest() } }
        if let dataParallel, options.gradientAccumulation % dataParallel.size != 0 {
            throw DataParallelError.indivisibleAccumulation(micro: options.gradientAccumulation, ranks: dataParallel.size)
        }
        while step < options.steps {
            let started = clock.now
            let (total, items, finite) = try dataParallel.map { try accumulateShared(step: step, loss: loss, job: $0) }
                ?? accumulate(step: step, micros: Array(0..<options.gradientAccumulation), loss: loss)
            let norm = finite ? clipGradients() : .nan
            guard norm.isFinite else {
                for (_, parameter) in parameters { parameter.zeroGradient() }
                guard options.restoresBest, bestValues != nil else {
                    throw TrainingError.nonFiniteLoss(step: step + 1, lastCheckpoint: lastCheckpoint)
                }
                divergedStep = step + 1
                break
            }
            optimizer.learningRate = schedule.learningRate(base: options.learningRate, at: step)
            optimizer.step()
            step += 1
            let seconds = (clock.now - started) / .seconds(1)
            var record = StepRecord(step: step, loss: total, learningRate: optimizer.learningRate, gradientNorm: norm,
                                    throughput: Double(items) / max(seconds, 1e-9), evaluation: nil, exchangeSeconds: lastExchangeSeconds,
                                    seconds: seconds)
            var stop = false
            if let evaluate, step == options.steps || options.evaluateEvery.map({ step % $0 == 0 }) == true {
                let score = try evaluate(step)
                record.evaluation = score
                stop = self.record(evaluation: score)
            }
            history.append(record)
            try onStep(record)
            if let every = options.checkpointEvery, step % every == 0 || step == options.steps || stop {
                try saveCheckpoint()
            }
            if stop { break }
        }
        return bestEvaluation
    }

    /// Runs `micros` of `step` in order, accumulating their gradients (each scaled by
    /// 1 / `gradientAccumulation`); stops at the first non-finite loss. Returns the
    /// accumulated loss, the items and whether every loss was finite.
    private func accumulate(step: Int, micros: [Int], loss: (Int, Int, Tape) throws -> (loss: Variable, items: Int),
                            onMicro: (Float, Int) -> Void = { _, _ in }) throws -> (loss: Float, items: Int, finite: Bool) {
        var total: Float = 0, items = 0
        for micro in micros {
            let tape = Tape()
            let (value, count) = try loss(step, micro, tape)
            let scalar = value.value.scalar
            guard scalar.isFinite else { return (total, items, false) }
            tape.backward(value, seed: Tensor(scalar: 1 / Float(options.gradientAccumulation)))
            total += scalar / Float(options.gradientAccumulation)
            items += count
            onMicro(scalar, count)
        }
        return (total, items, true)
    }

    /// `accumulate` shared by the ranks of `job`: this rank computes its run of micro-batches,
    /// keeping each one's gradients apart; every rank gathers all of them and sums them in
    /// micro-batch order, so the result is the single process's bit for bit.
    private func accumulateShared(step: Int, loss: (Int, Int, Tape) throws -> (loss: Variable, items: Int),
                                  job: DataParallel) throws -> (loss: Float, items: Int, finite: Bool) {
        let share = options.gradientAccumulation / job.size
        let sizes = parameters.map(\.parameter.value.count)
        // Per micro-batch: its loss, items, a finite flag, then per parameter a presence flag and its gradient.
        let stride = 3 + parameters.count + sizes.reduce(0, +)
        var local = [Float](repeating: 0, count: share * stride)
        for (slot, micro) in ((job.rank * share)..<((job.rank + 1) * share)).enumerated() {
            let base = slot * stride
            let (_, _, finite) = try accumulate(step: step, micros: [micro], loss: loss) { scalar, count in
                local[base] = scalar
                local[base + 1] = Float(count)
            }
            local[base + 2] = finite ? 1 : 0
            var offset = base + 3
            for (index, (_, parameter)) in parameters.enumerated() {
                if let grad = parameter.grad {
                    local[offset] = 1
                    local.replaceSubrange((offset + 1)..<(offset + 1 + grad.count), with: grad.scalars)
                }
                offset += 1 + sizes[index]
                parameter.zeroGradient()
            }
            if !finite { break }
        }
        let exchange = ContinuousClock.now
        defer { lastExchangeSeconds = (ContinuousClock.now - exchange) / .seconds(1) }
        let all = job.allGather(local)
        var total: Float = 0, items = 0
        for micro in 0..<options.gradientAccumulation {
            let base = micro * stride
            guard all[base + 2] == 1 else { return (total, items, false) }
            total += all[base] / Float(options.gradientAccumulation)
            items += Int(all[base + 1])
            var offset = base + 3
            for (index, (_, parameter)) in parameters.enumerated() {
                if all[offset] == 1 {
                    let grad = Tensor(shape: parameter.value.shape, scalars: Array(all[(offset + 1)..<(offset + 1 + sizes[index])]))
                    parameter.grad = parameter.grad.map { $0 + grad } ?? grad
                }
                offset += 1 + sizes[index]
            }
        }
        return (total, items, true)
    }

    /// One line on how the run ended: which evaluation was best and whether the loss diverged.
    public var summary: String {
        var lines: [String] = []
        if let divergedStep {
            lines.append("the loss or its gradient became NaN or infinite at step \(divergedStep); training stopped there")
        }
        if let bestEvaluation, let bestStep {
            let when = bestStep == 0 ? "before training (training never improved on the starting model)" : "after step \(bestStep) of \(step)"
            lines.append(String(format: "best evaluation %.4f %@", bestEvaluation, when)
                         + (options.restoresBest ? "; its parameters are kept" : ""))
        }
        return lines.joined(separator: "\n")
    }

    /// Notes an evaluation after `step` updates; returns whether patience has run out.
    private func record(evaluation score: Double) -> Bool {
        guard bestEvaluation.map({ score > $0 }) ?? true else {
            evaluationsWithoutImprovement += 1
            return options.patience.map { evaluationsWithoutImprovement >= $0 } ?? false
        }
        bestEvaluation = score
        bestStep = step
        evaluationsWithoutImprovement = 0
        if options.restoresBest { bestValues = parameters.map(\.parameter.value) }
        return false
    }

    /// Puts back the parameter values of the best evaluation, if one was kept.
    private func restoreBest() {
        guard let bestValues else { return }
        for ((_, parameter), value) in zip(parameters, bestValues) { parameter.value = value }
    }

    private var lastCheckpoint: String? {
        guard let checkpointPath, FileManager.default.fileExists(atPath: checkpointPath) else { return nil }
        return checkpointPath
    }

    /// Scales gradients so their global norm is at most `maxGradientNorm`; returns the norm before clipping.
    private func clipGradients() -> Float {
        var squares: Double = 0
        for (_, parameter) in parameters {
            guard let grad = parameter.grad else { continue }
            for g in grad.scalars { squares += Double(g) * Double(g) }
        }
        let norm = Float(squares.squareRoot())
        if let limit = options.maxGradientNorm, norm > limit, norm.isFinite {
            let factor = limit / (norm + 1e-6)
            for (_, parameter) in parameters where parameter.grad != nil { parameter.grad = parameter.grad! * factor }
        }
        return norm
    }

    // MARK: Checkpoints

    /// Writes parameters, optimizer state, step, evaluation state and history atomically.
    public func saveCheckpoint() throws {
        guard let checkpointPath, (dataParallel?.rank ?? 0) == 0 else { return }
        let state = optimizer.state
        let historyJSON = String(decoding: try JSONEncoder().encode(history), as: UTF8.self)
        let optionsJSON = String(decoding: try JSONEncoder.sorted.encode(options), as: UTF8.self)
        try HDF5File.writeAtomically(to: checkpointPath) { file in
            try file.setAttribute("graft-training/1", named: "format")
            try file.setAttribute(optionsJSON, named: "options")
            try file.setAttribute(String(step), named: "step")
            try file.setAttribute(String(state.steps), named: "optimizer_steps")
            try file.setAttribute(bestEvaluation.map { String($0) } ?? "", named: "best_evaluation")
            try file.setAttribute(String(evaluationsWithoutImprovement), named: "evaluations_without_improvement")
            try file.setAttribute(historyJSON, named: "history")
            try file.setAttribute(bestStep.map { String($0) } ?? "", named: "best_step")
            for (index, (name, parameter)) in parameters.enumerated() {
                try file.write(parameter.value, at: "parameters/\(name)")
                if let bestValues { try file.write(bestValues[index], at: "best/\(name)") }
                if let m = state.first[index], let v = state.second[index] {
                    try file.write(m, at: "optimizer/first/\(name)")
                    try file.write(v, at: "optimizer/second/\(name)")
                }
            }
        }
    }

    /// Restores a checkpoint written by `saveCheckpoint` for the same parameters.
    public func resume(from path: String) throws {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        guard (try? file.attribute(named: "format")) == "graft-training/1" else {
            throw TrainingError.checkpointMismatch(file: path, reason: "it is not a Graft training checkpoint")
        }
        if try file.attributeNames().contains("options") {
            let changed = try changedSettings(since: file.attribute(named: "options"))
            guard changed.isEmpty else {
                throw TrainingError.checkpointMismatch(file: path, reason: "it was written by a run with other settings (\(changed.joined(separator: ", "))); "
                                                        + "resume with the settings it was started with, or start afresh")
            }
        }
        let stored = Set(try file.datasetNames().filter { $0.hasPrefix("parameters/") }.map { String($0.dropFirst("parameters/".count)) })
        let expected = Set(parameters.map(\.name))
        guard stored == expected else {
            let missing = expected.subtracting(stored).sorted(), extra = stored.subtracting(expected).sorted()
            throw TrainingError.checkpointMismatch(file: path, reason: "its parameters differ from this run's (missing: \(missing.prefix(3)), unexpected: \(extra.prefix(3)))")
        }
        var first: [Tensor?] = [], second: [Tensor?] = [], best: [Tensor] = []
        for (name, parameter) in parameters {
            parameter.value = try file.read("parameters/\(name)", expectedShape: parameter.value.shape)
            if file.contains("best/\(name)") { best.append(try file.read("best/\(name)", expectedShape: parameter.value.shape)) }
            let hasMoments = file.contains("optimizer/first/\(name)")
            first.append(hasMoments ? try file.read("optimizer/first/\(name)", expectedShape: parameter.value.shape) : nil)
            second.append(hasMoments ? try file.read("optimizer/second/\(name)", expectedShape: parameter.value.shape) : nil)
        }
        guard let restoredStep = Int(try file.attribute(named: "step")), let optimizerSteps = Int(try file.attribute(named: "optimizer_steps")),
              let without = Int(try file.attribute(named: "evaluations_without_improvement")) else {
            throw TrainingError.checkpointMismatch(file: path, reason: "its step counters are unreadable")
        }
        optimizer.state = (optimizerSteps, first, second)
        step = restoredStep
        bestEvaluation = Double(try file.attribute(named: "best_evaluation"))
        bestStep = (try? file.attribute(named: "best_step")).flatMap { Int($0) }
        bestValues = best.count == parameters.count ? best : nil
        evaluationsWithoutImprovement = without
        history = try JSONDecoder().decode([StepRecord].self, from: Data(try file.attribute(named: "history").utf8))
    }

    /// The settings (flag names) in which this run's options differ from the stored ones (`storedJSON`),
    /// except the checkpoint interval, which changes nothing the run computes.
    private func changedSettings(since storedJSON: String) throws -> [String] {
        func fields(_ json: Data) throws -> [String: String] {
            let object = try JSONSerialization.jsonObject(with: json) as? [String: Any] ?? [:]
            return object.mapValues { "\($0)" }
        }
        let (current, stored) = (try fields(JSONEncoder.sorted.encode(options)), try fields(Data(storedJSON.utf8)))
        return Set(current.keys).union(stored.keys).subtracting(["checkpointEvery"]).sorted()
            .filter { current[$0] != stored[$0] }
            .map { key in key.reduce(into: "--") { $0 += $1.isUppercase ? "-" + $1.lowercased() : String($1) } }
    }
}
