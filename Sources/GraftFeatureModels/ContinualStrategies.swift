import Foundation
import GraftAutodiff
import GraftNN
import GraftTensor
import GraftTrain

/// How a class-incremental stream is learned beyond the learner itself: what each
/// task trains on, what is added to its loss, and what is kept after it. The
/// strategies of Avalanche's `avalanche.training` of the same names, on frozen features.
public enum ContinualStrategy: Sendable, Equatable, CustomStringConvertible {
    /// Fine-tuning on each task's own examples (Avalanche's `Naive`).
    case naive
    /// Experience replay: each mini-batch of the task's own examples is joined by a mini-batch
    /// from a memory of at most `memory` earlier examples, the loss over all classes seen so far
    /// (Avalanche's `Replay` and its `ReplayDataLoader`: memory batches of the batch size from
    /// shuffled passes over the memory, each pass's last batch short).
    /// The memory is experience-balanced (Avalanche's default buffer): after each task,
    /// every task seen keeps a random `memory / tasks` of its examples.
    case replay(memory: Int)
    /// Elastic weight consolidation (Kirkpatrick et al. 2017), as Avalanche's `EWC`
    /// (mode "separate"): after each task, its importance (the squared mini-batch
    /// gradients of the loss, averaged over the task's batches) and the parameters
    /// are kept; later tasks add `lambda Σ importance (θ − θ_task)²` for every earlier task.
    case ewc(lambda: Float)
    /// Learning without forgetting (Li & Hoiem 2016), as Avalanche's `LwF`: later tasks
    /// add `alpha` times the KL divergence between the softened (`temperature`) outputs
    /// of the earlier classes before the task and now, on the task's examples.
    case lwf(alpha: Float, temperature: Float)
    /// GDumb (Prabhu et al. 2020): a class-balanced memory of at most `memory`
    /// examples, filled greedily as examples arrive; after each task the learner
    /// restarts from its initial parameters and trains on the memory alone.
    case gdumb(memory: Int)

    /// The strategy's name and settings, e.g. `replay (memory 200)`.
    public var description: String {
        switch self {
        case .naive: "naive"
        case .replay(let memory): "replay (memory \(memory))"
        case .ewc(let lambda): "EWC (lambda \(lambda))"
        case let .lwf(alpha, temperature): "LwF (alpha \(alpha), temperature \(temperature))"
        case .gdumb(let memory): "GDumb (memory \(memory))"
        }
    }

    /// The examples the strategy keeps (replay, GDumb), 0 otherwise.
    public var memorySize: Int {
        switch self {
        case .replay(let memory), .gdumb(let memory): memory
        default: 0
        }
    }

    /// - Throws: `ConfigurationError` for an empty memory or a negative weight.
    public func validate() throws {
        switch self {
        case .naive: break
        case .replay(let memory), .gdumb(let memory):
            guard memory > 0 else { throw ConfigurationError("\(self): the memory must hold at least one example") }
        case .ewc(let lambda):
            guard lambda >= 0, lambda.isFinite else { throw ConfigurationError("\(self): lambda must be a finite number >= 0") }
        case let .lwf(alpha, temperature):
            guard alpha >= 0, alpha.isFinite, temperature > 0, temperature.isFinite else {
                throw ConfigurationError("\(self): alpha must be >= 0 and the temperature > 0")
            }
        }
    }
}

/// A strategy's state along one stream: its memory and what it keeps of earlier tasks.
struct StrategyState {
    let strategy: ContinualStrategy
    /// Rows of the stream's training data held in memory (replay, GDumb), with their task.
    private(set) var memory: [(row: Int, task: Int)] = []
    /// EWC: each finished task's importance and parameter values.
    private var anchors: [(importance: [Tensor], values: [Tensor])] = []
    /// LwF: the earlier classes' softened probabilities on the current task's rows, before the task.
    private var previousProbabilities: [Int: [Float]] = [:]
    private var previousClasses = 0

    init(_ strategy: ContinualStrategy) { self.strategy = strategy }

    /// The rows task `task` trains on, the rows replayed beside each batch, and the classes
    /// its loss runs over, given its own rows.
    mutating func plan(task: Int, own: [Int], classes: Range<Int>, seen: Range<Int>, labels: [Int],
                       generator: inout SeededGenerator) -> (rows: [Int], replayed: [Int], classes: Range<Int>) {
        switch strategy {
        case .replay: return (own, memory.map(\.row), seen)
        case .gdumb(let size):
            for row in own.shuffled(using: &generator) { admitGreedily(row, task: task, size: size, labels: labels, generator: &generator) }
            return (memory.map(\.row), [], seen)
        default: return (own, [], classes)
        }
    }

    /// Before training a task: LwF records the outputs it distils from.
    mutating func beginTask<Learner: ContinualLearner>(_ learner: Learner, encoded: Learner.Encoded, rows: [Int]) {
        guard case .lwf(_, let temperature) = strategy else { return }
        previousProbabilities = [:]
        guard previousClasses > 0 else { return }
        for start in stride(from: 0, to: rows.count, by: 1024) {
            let block = Array(rows[start..<min(start + 1024, rows.count)])
            let logits = learner.logits(learner.select(block, of: encoded), tape: nil).value.slice(alongAxis: 1, 0..<previousClasses)
            let probabilities = (logits * (1 / temperature)).softmax().scalars
            for (i, row) in block.enumerated() {
                previousProbabilities[row] = Array(probabilities[(i * previousClasses)..<((i + 1) * previousClasses)])
            }
        }
    }

    /// The strategy's addition to the loss of a batch of `rows` with `logits` (all outputs), if any.
    func penalty(rows: [Int], logits: Variable, parameters: [Parameter], tape: Tape) -> Variable? {
        switch strategy {
        case .ewc(let lambda) where !anchors.isEmpty:
            var total: Variable?
            for anchor in anchors {
                for (index, parameter) in parameters.enumerated() where parameter.isTrainable {
                    let difference = tape.variable(parameter) - Variable(anchor.values[index])
                    let term = (Variable(anchor.importance[index]) * difference * difference).sum()
                    total = total.map { $0 + term } ?? term
                }
            }
            return total.map { $0 * lambda }
        case let .lwf(alpha, temperature) where previousClasses > 0 && !previousProbabilities.isEmpty:
            // KL(q ‖ p) averaged over the batch: Σ q log q − Σ q log p, the first term a constant.
            let targets = rows.flatMap { previousProbabilities[$0]! }
            let q = Tensor(shape: [rows.count, previousClasses], scalars: targets)
            let logP = (logits.slice(alongAxis: 1, 0..<previousClasses) * (1 / temperature)).logSoftmax()
            let entropyTerm = targets.reduce(Float(0)) { $0 + ($1 > 0 ? $1 * Foundation.log($1) : 0) } / Float(rows.count)
            return ((Variable(q) * logP).sum() * (-1 / Float(rows.count)) + entropyTerm) * alpha
        default:
            return nil
        }
    }

    /// After training a task on its own rows (`classes`: its loss's outputs; `seenClasses`: the
    /// stream's classes so far): the replay memory, EWC's importance and LwF's classes are updated.
    mutating func endTask<Learner: ContinualLearner>(
        _ learner: Learner, task: Int, own: [Int], encoded: Learner.Encoded, labels: [Int], classes: Range<Int>, seenClasses: Int,
        parameters: [Parameter], batchSize: Int, generator: inout SeededGenerator
    ) {
        switch strategy {
        case .replay(let size):
            let tasks = task + 1, quota = size / tasks
            var kept: [(row: Int, task: Int)] = []
            for earlier in 0..<task {
                kept += memory.filter { $0.task == earlier }.shuffled(using: &generator).prefix(quota)
            }
            kept += own.shuffled(using: &generator).prefix(size - kept.count).map { ($0, task) }
            memory = kept
        case .ewc:
            var importance = parameters.map { Tensor(zeros: $0.value.shape) }
            var batches = 0
            for start in stride(from: 0, to: own.count, by: batchSize) {
                let batch = Array(own[start..<min(start + batchSize, own.count)])
                let tape = Tape()
                let logits = learner.logits(learner.select(batch, of: encoded), tape: tape).slice(alongAxis: 1, classes)
                tape.backward(Variable.crossEntropy(logits: logits, targets: batch.map { labels[$0] - classes.lowerBound }))
                for (index, parameter) in parameters.enumerated() {
                    if let grad = parameter.grad { importance[index].add(grad * grad, scaledBy: 1) }
                    parameter.zeroGradient()
                }
                batches += 1
            }
            anchors.append((importance.map { $0 * (1 / Float(max(batches, 1))) }, parameters.map(\.value)))
        case .lwf:
            previousClasses = seenClasses
        default:
            break
        }
    }

    /// GDumb's greedy class-balanced admission: a free slot takes the example; a full
    /// memory takes it only if its class holds fewer than its share, evicting a
    /// random example of the largest class.
    private mutating func admitGreedily(_ row: Int, task: Int, size: Int, labels: [Int], generator: inout SeededGenerator) {
        guard memory.count >= size else { memory.append((row, task)); return }
        var counts: [Int: Int] = [:]
        for entry in memory { counts[labels[entry.row], default: 0] += 1 }
        counts[labels[row], default: 0] += 0
        guard counts[labels[row]]! < size / counts.count else { return }
        let largest = counts.max { $0.value < $1.value || ($0.value == $1.value && $0.key > $1.key) }!.key
        let candidates = memory.indices.filter { labels[memory[$0].row] == largest }
        memory[candidates[Int(generator.next() % UInt64(candidates.count))]] = (row, task)
    }
}
