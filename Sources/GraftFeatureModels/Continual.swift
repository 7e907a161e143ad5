import Foundation
import GraftAutodiff
import GraftNN
import GraftTensor
import GraftTrain

/// Frozen feature vectors (`[n, d]`) with one class label each.
public struct LabelledFeatures: Sendable {
    /// `[n, d]` features, one row per example.
    public let features: Tensor
    /// The class index of each row of `features`.
    public let labels: [Int]

    /// - Throws: `ContinualError.invalidData` unless `features` is `[labels.count, d]`.
    public init(features: Tensor, labels: [Int]) throws {
        guard features.rank == 2, features.shape[0] == labels.count else {
            throw ContinualError.invalidData("features of shape \(features.shape) for \(labels.count) labels; expected [\(labels.count), d]")
        }
        self.features = features
        self.labels = labels
    }

    /// The number of examples `n`.
    public var count: Int { labels.count }
    /// The width `d` of each row.
    public var featureSize: Int { features.shape[1] }
}

/// One task of a continual stream: the classes it teaches and its training and test rows.
public struct ContinualTask: Sendable, Equatable {
    /// The classes whose examples the task brings.
    public let classes: Range<Int>
    /// Its rows of the stream's training and test features.
    public let train: [Int], test: [Int]
}

/// A stream of tasks learned one after the other, each example tested with no task
/// identity (a prediction ranges over every class seen so far):
/// - class-incremental: each task brings new classes (consecutive ones);
/// - domain-incremental: each task brings the same classes from another domain
///   (another language, say), so a prediction ranges over all of them from the start.
public struct ContinualStream: Sendable {
    /// Every class's name, indexed by label.
    public let classNames: [String]
    /// The tasks, in the order they are learned.
    public let tasks: [ContinualTask]
    /// All the stream's training examples; each task's `train` lists its rows.
    public let train: LabelledFeatures
    /// All the stream's test examples; each task's `test` lists its rows.
    public let test: LabelledFeatures
    /// Each task's name (its classes, or its domain).
    public let taskNames: [String]

    /// A class-incremental stream whose task `i` is the next `classesPerTask[i]` classes.
    /// - Throws: `ContinualError` if the task sizes do not cover the classes,
    ///   a label is out of range, the splits' feature sizes differ, or a task
    ///   has no training or no test example.
    public init(classNames: [String], classesPerTask: [Int], train: LabelledFeatures, test: LabelledFeatures) throws {
        guard !classesPerTask.isEmpty, classesPerTask.allSatisfy({ $0 > 0 }), classesPerTask.reduce(0, +) == classNames.count else {
            throw ContinualError.invalidData("tasks of \(classesPerTask) classes do not partition the \(classNames.count) classes")
        }
        var start = 0
        let ranges = classesPerTask.map { size in
            defer { start += size }
            return start..<(start + size)
        }
        func rows(_ classes: Range<Int>, _ data: LabelledFeatures) -> [Int] { data.labels.indices.filter { classes.contains(data.labels[$0]) } }
        try self.init(classNames: classNames, train: train, test: test,
                      tasks: ranges.map { ContinualTask(classes: $0, train: rows($0, train), test: rows($0, test)) },
                      taskNames: ranges.map { $0.map { classNames[$0] }.joined(separator: ", ") })
    }

    /// A domain-incremental stream: task `i` is every class of domain `i`, in order.
    /// - Throws: `ContinualError` if a label is out of range, the domains' feature sizes
    ///   differ, or a domain has no training or no test example.
    public init(classNames: [String], domains: [(name: String, train: LabelledFeatures, test: LabelledFeatures)]) throws {
        guard let first = domains.first else { throw ContinualError.invalidData("a domain-incremental stream needs at least one domain") }
        for domain in domains where domain.train.featureSize != first.train.featureSize {
            throw ContinualError.featureSizeMismatch(expected: first.train.featureSize, found: domain.train.featureSize)
        }
        func joined(_ parts: [LabelledFeatures]) throws -> LabelledFeatures {
            try LabelledFeatures(features: Tensor.concatenate(parts.map(\.features), alongAxis: 0), labels: parts.flatMap(\.labels))
        }
        var (trainStart, testStart) = (0, 0)
        let tasks = domains.map { domain in
            defer { (trainStart, testStart) = (trainStart + domain.train.count, testStart + domain.test.count) }
            return ContinualTask(classes: 0..<classNames.count, train: Array(trainStart..<(trainStart + domain.train.count)),
                                 test: Array(testStart..<(testStart + domain.test.count)))
        }
        try self.init(classNames: classNames, train: try joined(domains.map(\.train)), test: try joined(domains.map(\.test)), tasks: tasks,
                      taskNames: domains.map(\.name))
    }

    private init(classNames: [String], train: LabelledFeatures, test: LabelledFeatures, tasks: [ContinualTask], taskNames: [String]) throws {
        guard train.featureSize == test.featureSize else {
            throw ContinualError.featureSizeMismatch(expected: train.featureSize, found: test.featureSize)
        }
        for (split, data) in [("train", train), ("test", test)] {
            if let label = data.labels.first(where: { !(0..<classNames.count).contains($0) }) {
                throw ContinualError.labelOutOfRange(label: label, classCount: classNames.count, split: split)
            }
        }
        for (index, task) in tasks.enumerated() {
            if task.train.isEmpty { throw ContinualError.emptyTask(task: index, split: "train") }
            if task.test.isEmpty { throw ContinualError.emptyTask(task: index, split: "test") }
        }
        (self.classNames, self.train, self.test, self.tasks, self.taskNames) = (classNames, train, test, tasks, taskNames)
    }

    /// The same tasks over other rows for the same examples (their token ids, say), in the same order.
    /// - Throws: `ContinualError.invalidData` if the labels differ from this stream's.
    public func replacingRows(train: LabelledFeatures, test: LabelledFeatures) throws -> ContinualStream {
        guard train.labels == self.train.labels, test.labels == self.test.labels else {
            throw ContinualError.invalidData("the new rows' labels are not the stream's: give the same examples in the same order")
        }
        return try ContinualStream(classNames: classNames, train: train, test: test, tasks: tasks, taskNames: taskNames)
    }

    /// The classes seen once tasks `0...task` are learned (those a prediction then ranges over).
    public func seenClasses(through task: Int) -> Range<Int> {
        0..<(tasks[...task].map(\.classes.upperBound).max() ?? 0)
    }
}

/// How each task is trained: an optimizer on the mean cross-entropy over the
/// classes seen so far, a fixed number of epochs (shuffled mini-batches) per task.
public struct ContinualSchedule: Sendable, Equatable {
    /// The update rule, one instance for the whole stream.
    public enum OptimizerKind: String, Sendable, Equatable, CaseIterable {
        /// AdamW (β = 0.9, 0.999). Its moments keep moving a parameter after its gradient has gone.
        case adamW = "adamw"
        /// Plain SGD, no momentum: a parameter without gradient stays exactly where it is
        /// (what the key-value bottleneck's locality needs; the reference trains its values so).
        case sgd
    }

    /// The classes whose outputs a task's loss sees.
    public enum LossClasses: String, Sendable, Equatable, CaseIterable {
        /// Every class seen so far (the usual class-incremental loss): learning a task also
        /// pushes down the earlier classes' outputs on its examples.
        case seen
        /// The task's own classes only (the "labels trick", Zeno et al. 2018): earlier classes'
        /// outputs get no gradient. Prediction still ranges over every class seen so far.
        case task
        /// Every output of the learner, classes still to come included (what Avalanche's
        /// strategies do with a model of all the stream's outputs).
        case all
    }

    /// Passes over each task's training rows (default 5).
    public var epochs: Int
    /// Rows per mini-batch (default 32); replay adds up to as many memory rows to each.
    public var batchSize: Int
    /// The optimizer's learning rate (default `1e-3`).
    public var learningRate: Float
    /// Decoupled (AdamW) or L2 (SGD) weight decay. Keep 0 for the key-value
    /// bottleneck: decay would shrink every value at each step, selected or not.
    public var weightDecay: Float
    /// The update rule (default AdamW).
    public var optimizer: OptimizerKind
    /// The classes a task's cross-entropy runs over.
    public var lossClasses: LossClasses
    /// Seeds the order of the examples.
    public var seed: UInt64

    /// A schedule; by default 5 epochs of batches of 32 at learning rate `1e-3`, no weight decay,
    /// AdamW, the loss over the classes seen so far, seed 0.
    public init(epochs: Int = 5, batchSize: Int = 32, learningRate: Float = 1e-3, weightDecay: Float = 0,
                optimizer: OptimizerKind = .adamW, lossClasses: LossClasses = .seen, seed: UInt64 = 0) {
        (self.epochs, self.batchSize, self.learningRate, self.weightDecay, self.optimizer, self.lossClasses, self.seed) =
            (epochs, batchSize, learningRate, weightDecay, optimizer, lossClasses, seed)
    }

    /// The optimizer of `parameters` this schedule names.
    func makeOptimizer(_ parameters: [Parameter]) -> any Optimizer {
        switch optimizer {
        case .adamW: AdamW(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        case .sgd: SGD(parameters: parameters, learningRate: learningRate, weightDecay: weightDecay)
        }
    }
}

/// A classifier on frozen features that a stream can train: what it
/// precomputes once per split (`Encoded`) and its logits for those rows.
public protocol ContinualLearner: Module {
    associatedtype Encoded
    /// The number of classes it scores.
    var outputSize: Int { get }
    /// Whatever it needs from the features `[n, d]`, computed once per split.
    func encode(_ features: Tensor) throws -> Encoded
    /// The encoded examples `rows`, in that order.
    func select(_ rows: [Int], of encoded: Encoded) -> Encoded
    /// Logits `[n, outputSize]`, recorded on `tape` if given.
    func logits(_ encoded: Encoded, tape: Tape?) -> Variable
    /// Told of each training batch before its step (default: nothing to do).
    func recordTraining(_ batch: Encoded)
    /// Told that task `index` (its `classes`, its own training examples `training`) is about
    /// to be learned, before any of its batches (default: nothing to do).
    func beginTask(_ index: Int, classes: Range<Int>, training: Encoded)
}

extension ContinualLearner {
    /// Does nothing: by default a learner keeps no record of its training batches.
    public func recordTraining(_ batch: Encoded) {}
    /// Does nothing: by default a learner needs no preparation for a task.
    public func beginTask(_ index: Int, classes: Range<Int>, training: Encoded) {}
}

extension KeyValueBottleneck: ContinualLearner {
    /// The number of logits: `configuration.outputSize` (the decoder's outputs, else the value size).
    public var outputSize: Int { configuration.outputSize }
    /// The frozen keys' codes of the features (`codes(for:)`), so each split is looked up once.
    /// - Throws: `keysNotReady` unless the keys are frozen; `featureSizeMismatch`.
    public func encode(_ features: Tensor) throws -> KeyCodes { try codes(for: features) }
    /// The codes of the examples `rows`, in that order.
    public func select(_ rows: [Int], of encoded: KeyCodes) -> KeyCodes { encoded.rows(rows) }
}

/// A linear probe, or an MLP with one ReLU hidden layer, on frozen features.
/// Weights `N(0, 1/fan_in)`, zero biases.
public final class FeatureClassifier: ContinualLearner {
    /// The MLP's hidden layer (`[d] -> [hiddenSize]`, ReLU after it); nil for a linear probe.
    public let hidden: Linear?
    /// The layer that gives the `[classCount]` logits, from the hidden layer or the features.
    public let output: Linear

    /// A linear probe (`hiddenSize` nil) or an MLP, initialised from `seed`.
    public init(inputSize: Int, hiddenSize: Int?, classCount: Int, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        func layer(_ inputs: Int, _ outputs: Int) -> Linear {
            Linear(inputSize: inputs, outputSize: outputs, standardDeviation: 1 / Float(inputs).squareRoot(), generator: &generator)
        }
        hidden = hiddenSize.map { layer(inputSize, $0) }
        output = layer(hiddenSize ?? inputSize, classCount)
    }

    /// The `hidden` layer (for an MLP) and the `output` layer.
    public var children: [(name: String, module: any Module)] {
        (hidden.map { [("hidden", $0)] } ?? []) + [("output", output)]
    }

    /// The feature width `d` it reads.
    public var inputSize: Int { hidden?.inputSize ?? output.inputSize }
    /// The number of classes it scores.
    public var outputSize: Int { output.outputSize }

    /// The features themselves, once their size is checked.
    /// - Throws: `ContinualError.featureSizeMismatch` unless they are `[n, inputSize]`.
    public func encode(_ features: Tensor) throws -> Tensor {
        guard features.rank == 2, features.shape[1] == inputSize else {
            throw ContinualError.featureSizeMismatch(expected: inputSize, found: features.shape.last ?? 0)
        }
        return features
    }
    /// The feature rows `rows`, in that order.
    public func select(_ rows: [Int], of encoded: Tensor) -> Tensor { encoded.gatherRows(rows) }

    /// `[n, outputSize]` logits of `[n, d]` features, the layers' parameters recorded on `tape` if given.
    public func logits(_ encoded: Tensor, tape: Tape?) -> Variable {
        let x = Variable(encoded)
        return output(hidden.map { $0(x, tape: tape).relu() } ?? x, tape: tape)
    }
}

/// `rows[i][j]`: the accuracy on task `j`'s test examples after training task
/// `i`, predicting among all classes seen so far; `nil` for tasks not yet seen (`j > i`).
public struct AccuracyMatrix: Sendable, Equatable {
    /// `T` rows of `T` accuracies in `0...1`: `rows[i][j]` for `j <= i`, nil above the diagonal.
    public let rows: [[Double?]]
    /// Each task's accuracy under the untrained learner, when measured.
    public let untrained: [Double]?
    /// Task `j + 1`'s accuracy after training tasks `0...j` (before it is learned), when measured.
    public let ahead: [Double]?

    /// A `T x T` matrix with a value exactly where `j <= i`; `untrained` (`T` values) and
    /// `ahead` (`T - 1`) give forward transfer.
    public init(rows: [[Double?]], untrained: [Double]? = nil, ahead: [Double]? = nil) {
        precondition(rows.enumerated().allSatisfy { i, row in
            row.count == rows.count && row.indices.allSatisfy { (row[$0] != nil) == ($0 <= i) }
        }, "AccuracyMatrix: expected a square matrix with values exactly on and below the diagonal, got \(rows)")
        precondition(untrained.map { $0.count == rows.count } ?? true && ahead.map { $0.count == max(rows.count - 1, 0) } ?? true,
                     "AccuracyMatrix: expected \(rows.count) untrained and \(max(rows.count - 1, 0)) ahead accuracies")
        (self.rows, self.untrained, self.ahead) = (rows, untrained, ahead)
    }

    /// The number of tasks `T`.
    public var taskCount: Int { rows.count }

    /// The mean accuracy over all tasks after the last one.
    public var averageAccuracy: Double { (rows.last ?? []).compactMap { $0 }.reduce(0, +) / Double(max(taskCount, 1)) }

    /// Forgetting (Chaudhry et al. 2018): the mean over every task `j` but the
    /// last of `max_{j <= i < T-1} A[i][j] - A[T-1][j]`, the drop from its best
    /// accuracy before the last task to its final one; 0 for a single task.
    public var forgetting: Double {
        guard taskCount > 1 else { return 0 }
        let last = taskCount - 1
        let drops = (0..<last).map { j in (j..<last).map { rows[$0][j]! }.max()! - rows[last][j]! }
        return drops.reduce(0, +) / Double(last)
    }

    /// Backward transfer (Lopez-Paz & Ranzato 2017, as Avalanche's `StreamBWT`): the mean over every
    /// task `j` but the last of `A[T-1][j] - A[j][j]`, the final accuracy minus the accuracy just
    /// after learning it (negative: forgetting); 0 for a single task.
    public var backwardTransfer: Double {
        guard taskCount > 1 else { return 0 }
        let last = taskCount - 1
        return (0..<last).map { rows[last][$0]! - rows[$0][$0]! }.reduce(0, +) / Double(last)
    }

    /// Forward transfer (Lopez-Paz & Ranzato 2017, as Avalanche's `StreamForwardTransfer`): the mean over
    /// every task `j` but the first of its accuracy just before it is learned minus the untrained
    /// learner's; nil when not measured or for a single task.
    public var forwardTransfer: Double? {
        guard let untrained, let ahead, taskCount > 1 else { return nil }
        return (1..<taskCount).map { ahead[$0 - 1] - untrained[$0] }.reduce(0, +) / Double(taskCount - 1)
    }

    /// A Markdown table: one row per trained task, one column per evaluated task.
    public func table(taskNames: [String]) -> String {
        let header = "| after training | " + taskNames.joined(separator: " | ") + " |"
        let rule = "|---|" + String(repeating: "---:|", count: taskNames.count)
        let body = zip(taskNames, rows).map { name, row in
            "| \(name) | " + row.map { $0.map { String(format: "%.3f", $0) } ?? "" }.joined(separator: " | ") + " |"
        }
        return ([header, rule] + body).joined(separator: "\n")
    }
}

/// A stream or learner that cannot be used together.
public enum ContinualError: Error, CustomStringConvertible, Equatable {
    /// Features, labels, tasks or token-id rows that do not fit together, described.
    case invalidData(String)
    /// Features of another width than the stream's train split, the first domain's or the learner's input.
    case featureSizeMismatch(expected: Int, found: Int)
    /// A label of the `train` or `test` split outside `0..<classCount`.
    case labelOutOfRange(label: Int, classCount: Int, split: String)
    /// Task `task` (from 0) has no examples in the `train` or `test` split.
    case emptyTask(task: Int, split: String)
    /// The learner scores fewer classes than the stream has.
    case tooFewOutputs(outputs: Int, classes: Int)

    /// A one-line message naming what was expected and what was found.
    public var description: String {
        switch self {
        case .invalidData(let detail): "invalid continual-learning data: \(detail)"
        case let .featureSizeMismatch(expected, found): "expected features of size \(expected), found \(found)"
        case let .labelOutOfRange(label, classCount, split): "\(split) label \(label) is outside 0..<\(classCount)"
        case let .emptyTask(task, split): "task \(task + 1) has no \(split) examples"
        case let .tooFewOutputs(outputs, classes): "the learner scores \(outputs) classes; the stream has \(classes)"
        }
    }
}

/// Class-incremental training and evaluation on frozen features.
public enum ContinualLearning {
    /// Trains `learner` task after task with `strategy` (naive: each task sees only its
    /// own examples), one optimizer for the whole stream (GDumb: a fresh one after each
    /// restart), and fills the accuracy matrix after each task. `log` receives one line per task.
    public static func train<Learner: ContinualLearner>(
        _ learner: Learner, on stream: ContinualStream, schedule: ContinualSchedule, strategy: ContinualStrategy = .naive,
        log: (String) -> Void = { _ in }
    ) throws -> AccuracyMatrix {
        try check(learner, stream, schedule)
        try strategy.validate()
        let train = try learner.encode(stream.train.features), test = try learner.encode(stream.test.features)
        let parameters = learner.trainableParameters().map(\.parameter)
        let initialValues = parameters.map(\.value)
        var optimizer = schedule.makeOptimizer(parameters)
        var generator = SeededGenerator(seed: schedule.seed)
        var state = StrategyState(strategy)
        var rows: [[Double?]] = [], ahead: [Double] = []
        let initial = stream.tasks.indices.map { accuracy(learner, encoded: test, stream: stream, task: $0, after: nil) }
        for (index, task) in stream.tasks.enumerated() {
            let own = task.train, seenSoFar = stream.seenClasses(through: index)
            let seen = schedule.lossClasses == .all ? 0..<learner.outputSize : seenSoFar
            let plan = state.plan(task: index, own: own, classes: schedule.lossClasses == .task ? task.classes : seen, seen: seen,
                                  labels: stream.train.labels, generator: &generator)
            if case .gdumb = strategy {
                for (parameter, value) in zip(parameters, initialValues) { parameter.value = value }
                optimizer = schedule.makeOptimizer(parameters)
            }
            learner.beginTask(index, classes: task.classes, training: learner.select(own, of: train))
            state.beginTask(learner, encoded: train, rows: plan.rows)
            let loss = fit(learner, optimizer: optimizer, encoded: train, labels: stream.train.labels, rows: plan.rows,
                           replayed: plan.replayed, classes: plan.classes, schedule: schedule, generator: &generator) { batch, logits, tape in
                state.penalty(rows: batch, logits: logits, parameters: parameters, tape: tape)
            }
            state.endTask(learner, task: index, own: own, encoded: train, labels: stream.train.labels, classes: plan.classes,
                          seenClasses: seenSoFar.upperBound,
                          parameters: parameters, batchSize: schedule.batchSize, generator: &generator)
            rows.append(evaluate(learner, encoded: test, stream: stream, through: index))
            if index + 1 < stream.tasks.count { ahead.append(accuracy(learner, encoded: test, stream: stream, task: index + 1, after: index)) }
            log("task \(index + 1)/\(stream.tasks.count): final epoch loss \(String(format: "%.4f", loss))")
        }
        return AccuracyMatrix(rows: rows, untrained: initial, ahead: ahead)
    }

    /// The joint (i.i.d.) upper bound: after each task `i`, a fresh learner from
    /// `makeLearner` is trained on the shuffled union of tasks `0...i` for the
    /// same number of epochs, and evaluated like `train`'s.
    public static func trainJointly<Learner: ContinualLearner>(
        _ makeLearner: () throws -> Learner, on stream: ContinualStream, schedule: ContinualSchedule,
        log: (String) -> Void = { _ in }
    ) throws -> AccuracyMatrix {
        var rows: [[Double?]] = []
        for index in stream.tasks.indices {
            let learner = try makeLearner()
            try check(learner, stream, schedule)
            let optimizer = schedule.makeOptimizer(learner.trainableParameters().map(\.parameter))
            var generator = SeededGenerator(seed: schedule.seed)
            let seen = stream.seenClasses(through: index)
            let train = try learner.encode(stream.train.features), test = try learner.encode(stream.test.features)
            let loss = fit(learner, optimizer: optimizer, encoded: train, labels: stream.train.labels,
                           rows: stream.tasks[...index].flatMap(\.train).sorted(), classes: seen,
                           schedule: schedule, generator: &generator)
            rows.append(evaluate(learner, encoded: test, stream: stream, through: index))
            log("tasks 1-\(index + 1) jointly: final epoch loss \(String(format: "%.4f", loss))")
        }
        return AccuracyMatrix(rows: rows)
    }

    private static func check(_ learner: some ContinualLearner, _ stream: ContinualStream, _ schedule: ContinualSchedule) throws {
        guard schedule.epochs > 0, schedule.batchSize > 0, schedule.learningRate > 0, schedule.weightDecay >= 0 else {
            throw ConfigurationError("schedule: epochs, batch size and learning rate must be positive and weight decay >= 0, got \(schedule)")
        }
        guard learner.outputSize >= stream.classNames.count else {
            throw ContinualError.tooFewOutputs(outputs: learner.outputSize, classes: stream.classNames.count)
        }
    }

    /// Logits restricted to the first `classCount` classes.
    private static func seenLogits<Learner: ContinualLearner>(_ learner: Learner, _ encoded: Learner.Encoded, classCount: Int,
                                                            tape: Tape?) -> Variable {
        let logits = learner.logits(encoded, tape: tape)
        return classCount < learner.outputSize ? logits.slice(alongAxis: 1, 0..<classCount) : logits
    }

    /// Trains on `rows` for `schedule.epochs` epochs, each batch joined by a batch of `replayed` (as Avalanche's `ReplayDataLoader`: `batchSize` rows at a time from shuffled
    /// passes over them, the last batch of each pass short), the loss over the outputs of `classes` plus
    /// `penalty` of each batch (its rows, all outputs, the tape); returns the last epoch's mean loss.
    private static func fit<Learner: ContinualLearner>(
        _ learner: Learner, optimizer: any Optimizer, encoded: Learner.Encoded, labels: [Int], rows: [Int], replayed: [Int] = [],
        classes: Range<Int>, schedule: ContinualSchedule, generator: inout SeededGenerator,
        penalty: ([Int], Variable, Tape) -> Variable? = { _, _, _ in nil }
    ) -> Double {
        var batches: [[Int]] = []
        var replayOrder: [Int] = [], replayNext = 0
        for _ in 0..<schedule.epochs {
            let order = rows.shuffled(using: &generator)
            for start in stride(from: 0, to: order.count, by: schedule.batchSize) {
                var batch = Array(order[start..<min(start + schedule.batchSize, order.count)])
                if !replayed.isEmpty {
                    if replayNext == replayOrder.count { (replayOrder, replayNext) = (replayed.shuffled(using: &generator), 0) }
                    let end = min(replayNext + schedule.batchSize, replayOrder.count)
                    batch += replayOrder[replayNext..<end]
                    replayNext = end
                }
                batches.append(batch)
            }
        }
        let losses = optimise(optimizer, over: batches) { batch, tape in
            let selected = learner.select(batch, of: encoded)
            learner.recordTraining(selected)
            let outputs = learner.logits(selected, tape: tape)
            let crossEntropy = Variable.crossEntropy(logits: outputs.slice(alongAxis: 1, classes),
                                                     targets: batch.map { labels[$0] - classes.lowerBound })
            return penalty(batch, outputs, tape).map { crossEntropy + $0 } ?? crossEntropy
        }
        // The last epoch's mean loss, each batch weighted by its own (not replayed) rows.
        let perEpoch = (rows.count + schedule.batchSize - 1) / schedule.batchSize
        return zip(losses.suffix(perEpoch), stride(from: 0, to: rows.count, by: schedule.batchSize)).reduce(0.0) { total, pair in
            total + Double(pair.0) * Double(min(schedule.batchSize, rows.count - pair.1)) / Double(rows.count)
        }
    }

    /// Row `through` of the accuracy matrix: tasks `0...through` scored among their classes so far.
    private static func evaluate<Learner: ContinualLearner>(
        _ learner: Learner, encoded: Learner.Encoded, stream: ContinualStream, through task: Int
    ) -> [Double?] {
        stream.tasks.indices.map { j in j <= task ? accuracy(learner, encoded: encoded, stream: stream, task: j, after: task) : nil }
    }

    /// Task `j`'s test accuracy among the classes seen once tasks `0...after` are learned, or, for a task
    /// not learned yet (`j > after`), among those it will be scored on once it is.
    private static func accuracy<Learner: ContinualLearner>(
        _ learner: Learner, encoded: Learner.Encoded, stream: ContinualStream, task j: Int, after: Int?
    ) -> Double {
        let classCount = stream.seenClasses(through: max(j, after ?? j)).upperBound
        let rows = stream.tasks[j].test
        var correct = 0
        for start in stride(from: 0, to: rows.count, by: 1024) {
            let block = Array(rows[start..<min(start + 1024, rows.count)])
            let predictions = seenLogits(learner, learner.select(block, of: encoded), classCount: classCount, tape: nil).value.argmax()
            correct += zip(predictions, block).filter { $0 == stream.test.labels[$1] }.count
        }
        return Double(correct) / Double(rows.count)
    }
}
