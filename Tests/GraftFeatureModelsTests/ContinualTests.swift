import Foundation
import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftData
@testable import GraftText
@testable import GraftTrain
@testable import GraftFeatureModels

/// Gaussian blobs: 8 classes in 16 dimensions, split into 4 tasks of 2
/// classes, plus unlabelled points from every class. The class centres share
/// a large common offset (as real embeddings share a mean direction), so a
/// classifier's newest classes also score high on old classes' examples.
private struct Blobs {
    let stream: ContinualStream
    let unlabelled: Tensor

    init(seed: UInt64 = 0) throws {
        var generator = SeededGenerator(seed: seed)
        let common = Tensor.normal(shape: [16], standardDeviation: 3, generator: &generator)
        let centres = Tensor.normal(shape: [8, 16], standardDeviation: 1, generator: &generator) + common
        func sample(_ perClass: Int) -> (Tensor, [Int]) {
            let labels = (0..<(8 * perClass)).map { $0 % 8 }
            let noise = Tensor.normal(shape: [labels.count, 16], standardDeviation: 0.5, generator: &generator)
            return (centres.gatherRows(labels) + noise, labels)
        }
        let (train, trainLabels) = sample(60), (test, testLabels) = sample(30), (unlabelled, _) = sample(40)
        stream = try ContinualStream(classNames: (0..<8).map { "c\($0)" }, classesPerTask: [2, 2, 2, 2],
                                            train: LabelledFeatures(features: train, labels: trainLabels),
                                            test: LabelledFeatures(features: test, labels: testLabels))
        self.unlabelled = unlabelled
    }
}

@Suite struct ContinualTests {
    @Test func averageAccuracyAndForgettingOfAHandMadeMatrix() {
        let matrix = AccuracyMatrix(rows: [[0.9, nil, nil], [0.6, 0.8, nil], [0.5, 0.7, 0.9]])
        #expect(abs(matrix.averageAccuracy - 0.7) < 1e-12)
        // Task 1: best 0.9 before the end, 0.5 at the end; task 2: 0.8 -> 0.7.
        #expect(abs(matrix.forgetting - (0.4 + 0.1) / 2) < 1e-12)
        // A task that improves later has negative forgetting.
        #expect(abs(AccuracyMatrix(rows: [[0.5, nil], [0.75, 1]]).forgetting + 0.25) < 1e-12)
        #expect(AccuracyMatrix(rows: [[0.8]]).forgetting == 0)
        #expect(matrix.table(taskNames: ["a", "b", "c"]).split(separator: "\n")[3] == "| b | 0.600 | 0.800 |  |")
    }

    @Test func keyValueBottleneckForgetsLessThanALinearProbe() throws {
        let blobs = try Blobs()
        let stream = blobs.stream
        let schedule = ContinualSchedule(epochs: 5, batchSize: 16, learningRate: 0.01, seed: 1)

        let linear = FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2)
        let probe = try ContinualLearning.train(linear, on: stream, schedule: schedule)

        let configuration = KeyValueBottleneckConfiguration(inputSize: 16, heads: 16, keysPerHead: 32, keySize: 4, valueSize: 8)
        let bottleneck = try KeyValueBottleneck(configuration: configuration, seed: 3)
        var generator = SeededGenerator(seed: 4)
        try bottleneck.initializeKeys(.kMeans(iterations: 5), data: blobs.unlabelled, generator: &generator)
        try bottleneck.refineKeys(data: blobs.unlabelled, settings: KeyRefinement(epochs: 1, batchSize: 64), generator: &generator)
        try bottleneck.freezeKeys()
        var kvSchedule = schedule
        kvSchedule.learningRate = 0.05
        let kv = try ContinualLearning.train(bottleneck, on: stream, schedule: kvSchedule)

        for matrix in [probe, kv] {
            #expect(matrix.taskCount == 4 && matrix.rows.allSatisfy { $0.count == 4 })
            #expect(matrix.rows[1][2] == nil && matrix.rows[3][3] != nil)
        }
        // Measured with blob seeds 0-3: the probe forgets 0.93-1.0 and ends at 0.25-0.27; the bottleneck forgets 0.03-0.07, ends at 0.95-0.98.
        #expect(kv.forgetting + 0.5 < probe.forgetting, "forgetting: kv \(kv.forgetting), linear probe \(probe.forgetting)")
        #expect(kv.averageAccuracy > probe.averageAccuracy + 0.5, "average accuracy: kv \(kv.averageAccuracy), linear probe \(probe.averageAccuracy)")
        // Seeded: the same run gives the same matrix.
        let again = try ContinualLearning.train(FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2),
                                                on: stream, schedule: schedule)
        #expect(again == probe)
    }

    /// A linear probe that records its output weights before every training step.
    final class RecordingProbe: ContinualLearner {
        let probe = FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2)
        var weights: [Tensor] = []
        var batchSizes: [Int] = []
        var children: [(name: String, module: any Module)] { [("probe", probe)] }
        var outputSize: Int { probe.outputSize }
        func encode(_ features: Tensor) throws -> Tensor { try probe.encode(features) }
        func select(_ rows: [Int], of encoded: Tensor) -> Tensor { probe.select(rows, of: encoded) }
        func logits(_ encoded: Tensor, tape: Tape?) -> Variable { probe.logits(encoded, tape: tape) }
        func recordTraining(_ batch: Tensor) {
            weights.append(probe.output.weight.value)
            batchSizes.append(batch.shape[0])
        }
    }

    /// Replay joins each batch of a task's own rows with a batch of the memory as Avalanche's
    /// `ReplayDataLoader` does: batch-size memory batches from shuffled passes over the memory,
    /// each pass's last one short, the short last batch of own rows joined by a full memory batch.
    @Test func replayBatchesAreComposedAsAvalanches() throws {
        let learner = RecordingProbe()
        _ = try ContinualLearning.train(learner, on: try Blobs().stream, schedule: ContinualSchedule(epochs: 1, batchSize: 16, seed: 1),
                                        strategy: .replay(memory: 40))
        // Task 1: 120 own rows, no memory yet. Task 2: own 16 x 7 + 8; memory (40 rows) 16, 16, 8, 16, 16, 8, 16, 16.
        #expect(learner.batchSizes[0..<8].elementsEqual([16, 16, 16, 16, 16, 16, 16, 8]))
        #expect(learner.batchSizes[8..<16].elementsEqual([32, 32, 24, 32, 32, 24, 32, 24]))
    }

    /// With the loss over the task's own classes and plain SGD, learning a task leaves the earlier
    /// classes' outputs exactly as they were; with the loss over all seen classes (or all outputs) it pushes them.
    @Test func aTasksOwnClassesLossLeavesEarlierClassesAlone() throws {
        let stream = try Blobs().stream
        for lossClasses in ContinualSchedule.LossClasses.allCases {
            let learner = RecordingProbe()
            let schedule = ContinualSchedule(epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: .sgd, lossClasses: lossClasses, seed: 1)
            _ = try ContinualLearning.train(learner, on: stream, schedule: schedule)
            // Task 1's 120 examples make 8 steps; from then on classes 0 and 1 belong to earlier tasks.
            let earlier = { (weight: Tensor) in weight.slice(alongAxis: 0, 0..<2) }
            let moved = learner.weights.dropFirst(9).contains { earlier($0) != earlier(learner.weights[8]) }
            #expect(moved == (lossClasses != .task), "\(lossClasses)")
        }
    }

    @Test func jointTrainingIsTheUpperBound() throws {
        let stream = try Blobs().stream
        let schedule = ContinualSchedule(epochs: 5, batchSize: 16, learningRate: 0.01, seed: 1)
        let joint = try ContinualLearning.trainJointly({ FeatureClassifier(inputSize: 16, hiddenSize: 32, classCount: 8, seed: 2) },
                                                       on: stream, schedule: schedule)
        #expect(joint.taskCount == 4 && joint.averageAccuracy > 0.8)
    }

    @Test func invalidStreamsAndSchedulesAreRejected() throws {
        let features = try LabelledFeatures(features: Tensor(zeros: [4, 3]), labels: [0, 1, 2, 3])
        #expect(throws: ContinualError.invalidData("tasks of [2, 1] classes do not partition the 4 classes")) {
            try ContinualStream(classNames: ["a", "b", "c", "d"], classesPerTask: [2, 1], train: features, test: features)
        }
        let wide = try LabelledFeatures(features: Tensor(zeros: [4, 5]), labels: [0, 1, 2, 3])
        #expect(throws: ContinualError.featureSizeMismatch(expected: 3, found: 5)) {
            try ContinualStream(classNames: ["a", "b", "c", "d"], classesPerTask: [2, 2], train: features, test: wide)
        }
        let outOfRange = try LabelledFeatures(features: Tensor(zeros: [4, 3]), labels: [0, 1, 2, 7])
        #expect(throws: ContinualError.labelOutOfRange(label: 7, classCount: 4, split: "test")) {
            try ContinualStream(classNames: ["a", "b", "c", "d"], classesPerTask: [2, 2], train: features, test: outOfRange)
        }
        let missing = try LabelledFeatures(features: Tensor(zeros: [4, 3]), labels: [0, 1, 0, 1])
        #expect(throws: ContinualError.emptyTask(task: 1, split: "train")) {
            try ContinualStream(classNames: ["a", "b", "c", "d"], classesPerTask: [2, 2], train: missing, test: features)
        }
        #expect(throws: ContinualError.invalidData("features of shape [4, 3] for 3 labels; expected [3, d]")) {
            try LabelledFeatures(features: Tensor(zeros: [4, 3]), labels: [0, 1, 2])
        }
        let stream = try ContinualStream(classNames: ["a", "b", "c", "d"], classesPerTask: [2, 2], train: features, test: features)
        #expect(throws: ContinualError.tooFewOutputs(outputs: 3, classes: 4)) {
            try ContinualLearning.train(FeatureClassifier(inputSize: 3, hiddenSize: nil, classCount: 3, seed: 0), on: stream,
                                        schedule: ContinualSchedule())
        }
        #expect(throws: ContinualError.featureSizeMismatch(expected: 5, found: 3)) {
            try ContinualLearning.train(FeatureClassifier(inputSize: 5, hiddenSize: 2, classCount: 4, seed: 0), on: stream,
                                        schedule: ContinualSchedule())
        }
        #expect(throws: ConfigurationError.self) {
            try ContinualLearning.train(FeatureClassifier(inputSize: 3, hiddenSize: nil, classCount: 4, seed: 0), on: stream,
                                        schedule: ContinualSchedule(epochs: 0))
        }
    }

    @Test func idxFilesOfTheFashionMNISTStreamAreReadAndChecked() throws {
        // Two 2 x 3 images: magic 00 00 08 03, sizes 2, 2, 3 (big-endian), then 12 bytes.
        let header: [UInt8] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3], pixels = (0..<12).map(UInt8.init)
        let images = Data(header + pixels)
        let read = try FashionMNIST.readIDX(images, path: "images")
        #expect(read.dimensions == [2, 2, 3] && read.values == pixels)
        #expect(throws: DataError.unexpectedContent(path: "images", reason: "dimensions [2, 2, 3] need 12 bytes of data, found 11")) {
            try FashionMNIST.readIDX(images.dropLast(), path: "images")
        }
        let wrongMagic = "expected an IDX file of unsigned bytes (magic 00 00 08 ..), found 00 00 0d 01"
        #expect(throws: DataError.unexpectedContent(path: "f", reason: wrongMagic)) {
            try FashionMNIST.readIDX(Data([0, 0, 0x0D, 1, 0, 0, 0, 0]), path: "f")
        }
    }

    @Test func preparedFashionMNISTFilesRoundTripAndAreChecked() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-fashion-\(UUID().uuidString).idx").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        func images(_ labels: [Int]) -> LabelledImages {
            LabelledImages(height: 28, width: 28, pixels: labels.indices.flatMap { i in (0..<784).map { UInt8((i * 31 + $0) % 256) } }, labels: labels)
        }
        let (train, test) = (images([9, 0, 3]), images([5]))
        try FashionMNIST.write(train: train, test: test, to: path)
        let read = try FashionMNIST.read(from: path)
        #expect(read.train.labels == train.labels && read.train.pixels == train.pixels)
        #expect(read.test.labels == test.labels && read.test.pixels == test.pixels)
        // Header: 00 00 08 02, 4 rows, 786 bytes a row; the second row's label becomes 10.
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes.prefix(12) == [0, 0, 8, 2, 0, 0, 0, 4, 0, 0, 3, 18] && bytes.count == 12 + 4 * 786)
        bytes[12 + 786 + 1] = 10
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError.unexpectedContent(path: path, reason: "image 1 has split 0 and label 10; expected 0 or 1 and 0..<10")) {
            try FashionMNIST.read(from: path)
        }
        try Data([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 3, 1, 2, 3]).write(to: URL(fileURLWithPath: path))
        let wrongRows = "expected rows of 786 bytes (split, label, 28 x 28 pixels), found dimensions [1, 3]"
        #expect(throws: DataError.unexpectedContent(path: path, reason: wrongRows)) { try FashionMNIST.read(from: path) }
    }
}

@Suite struct ContinualStrategyTests {
    let schedule = ContinualSchedule(epochs: 5, batchSize: 16, learningRate: 0.01, seed: 1)

    func run(_ strategy: ContinualStrategy, stream: ContinualStream) throws -> AccuracyMatrix {
        try train(strategy, stream: stream).matrix
    }

    /// The matrix; how far the output weights of task 1's classes moved after task 1; and how far
    /// task 2 moved the probabilities among task 1's classes on task 2's examples (mean KL divergence).
    func train(_ strategy: ContinualStrategy, stream: ContinualStream) throws -> (matrix: AccuracyMatrix, drift: Float, shift: Float) {
        let probe = FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2)
        let secondTask = stream.train.features.gatherRows(stream.tasks[1].train)
        func firstClasses() -> Tensor { probe.logits(secondTask, tape: nil).value.slice(alongAxis: 1, 0..<2).softmax() }
        var weights: Tensor?, probabilities: Tensor?, shift: Float = 0
        let matrix = try ContinualLearning.train(probe, on: stream, schedule: schedule, strategy: strategy) { line in
            if line.hasPrefix("task 1/") { (weights, probabilities) = (probe.output.weight.value.slice(alongAxis: 0, 0..<2), firstClasses()) }
            if line.hasPrefix("task 2/") {
                let (q, p) = (probabilities!.scalars, firstClasses().scalars)
                shift = zip(q, p).map { $0 * Foundation.log($0 / $1) }.reduce(0, +) / Float(secondTask.shape[0])
            }
        }
        let drift = probe.output.weight.value.slice(alongAxis: 0, 0..<2) - weights!
        return (matrix, (drift * drift).sum().squareRoot(), shift)
    }

    /// Replay and GDumb keep examples, and forget less than naive fine-tuning of the same probe;
    /// EWC holds the first task's weights nearer where it left them, LwF its outputs among its own
    /// classes (in a class-incremental
    /// stream that need not save its accuracy: van de Ven et al. 2019 find both near naive there).
    @Test func strategiesThatRememberForgetLessThanNaiveFineTuning() throws {
        let stream = try Blobs().stream
        let naive = try train(.naive, stream: stream)
        for strategy in [ContinualStrategy.replay(memory: 80), .gdumb(memory: 80)] {
            let matrix = try run(strategy, stream: stream)
            #expect(matrix.forgetting < naive.matrix.forgetting - 0.1 && matrix.averageAccuracy > naive.matrix.averageAccuracy + 0.05,
                    "\(strategy): average accuracy \(matrix.averageAccuracy), forgetting \(matrix.forgetting); naive \(naive.matrix.averageAccuracy), \(naive.matrix.forgetting)")
            #expect(try run(strategy, stream: stream) == matrix)  // seeded
        }
        let ewc = try train(.ewc(lambda: 1000), stream: stream).drift
        #expect(ewc < 0.5 * naive.drift, "EWC: the first task's weights moved \(ewc); naive \(naive.drift)")
        let lwf = try train(.lwf(alpha: 10, temperature: 2), stream: stream).shift
        #expect(lwf < 0.5 * naive.shift, "LwF: the first classes' probabilities moved by KL \(lwf); naive \(naive.shift)")
        #expect(naive.matrix.backwardTransfer < -0.5 && abs(naive.matrix.backwardTransfer + naive.matrix.forgetting) < 1e-9)
    }

    /// LwF's penalty is α · KL(q ‖ p) of the softened earlier-class outputs, averaged over the batch, by hand.
    @Test func lwfPenaltyIsTheKullbackLeiblerDivergence() throws {
        let stream = try Blobs().stream
        let probe = FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2)
        var state = StrategyState(.lwf(alpha: 0.5, temperature: 2))
        var generator = SeededGenerator(seed: 0)
        let features = stream.train.features
        state.endTask(probe, task: 0, own: [], encoded: features, labels: stream.train.labels, classes: 0..<2, seenClasses: 2, parameters: [],
                      batchSize: 16, generator: &generator)
        state.beginTask(probe, encoded: features, rows: [3, 7])
        let before = probe.logits(features.gatherRows([3, 7]), tape: nil).value
        randomize(probe, seed: 5)
        let after = probe.logits(features.gatherRows([3, 7]), tape: nil)
        let penalty = try #require(state.penalty(rows: [3, 7], logits: after, parameters: [], tape: Tape())).value.scalar
        var expected: Float = 0
        for row in 0..<2 {
            func softened(_ t: Tensor) -> [Float] {
                let z = (0..<2).map { t[row, $0] / 2 }, m = z.max()!, e = z.map { Foundation.exp($0 - m) }
                return e.map { $0 / e.reduce(0, +) }
            }
            let q = softened(before), p = softened(after.value)
            expected += zip(q, p).map { $0 * Foundation.log($0 / $1) }.reduce(0, +) / 2
        }
        #expect(abs(penalty - 0.5 * expected) < 1e-5, "\(penalty) against \(0.5 * expected)")
    }

    @Test func invalidStrategiesAreRejected() throws {
        let stream = try Blobs().stream
        for strategy in [ContinualStrategy.replay(memory: 0), .gdumb(memory: -1), .ewc(lambda: -1), .lwf(alpha: 1, temperature: 0)] {
            #expect(throws: ConfigurationError.self) { try run(strategy, stream: stream) }
        }
    }
}

/// Replaces every parameter of `module` with `N(0, scale²)` samples.
private func randomize(_ module: any Module, seed: UInt64, scale: Float = 0.5) {
    var generator = SeededGenerator(seed: seed)
    for (_, parameter) in module.namedParameters() {
        parameter.value = .normal(shape: parameter.value.shape, standardDeviation: scale, generator: &generator)
    }
}

/// A domain-incremental stream: the same classes in each task, scored among all of them from the first task on.
@Suite struct DomainIncrementalStreams {
    /// Two classes told apart by the first feature; domain B is shifted on the second.
    static func domains() throws -> [(name: String, train: LabelledFeatures, test: LabelledFeatures)] {
        func domain(_ shift: Float, seed: UInt64) throws -> LabelledFeatures {
            var generator = SeededGenerator(seed: seed)
            let labels = (0..<40).map { $0 % 2 }
            let noise = Tensor.normal(shape: [40, 4], standardDeviation: 0.1, generator: &generator)
            let centres = Tensor(shape: [40, 4], scalars: labels.flatMap { label in [label == 0 ? 1 : -1, shift, 0, 0] })
            return try LabelledFeatures(features: noise + centres, labels: labels)
        }
        return [("A", try domain(0, seed: 1), try domain(0, seed: 2)), ("B", try domain(0.5, seed: 3), try domain(0.5, seed: 4))]
    }

    @Test func everyTaskHoldsEveryClassAndItsOwnRows() throws {
        let stream = try ContinualStream(classNames: ["x", "y"], domains: try Self.domains())
        #expect(stream.tasks.map(\.classes) == [0..<2, 0..<2] && stream.taskNames == ["A", "B"])
        #expect(stream.tasks[0].train == Array(0..<40) && stream.tasks[1].train == Array(40..<80) && stream.tasks[1].test == Array(40..<80))
        #expect(stream.seenClasses(through: 0) == 0..<2 && stream.train.count == 80)
    }

    @Test func learningTheSecondDomainIsScoredOnBoth() throws {
        let stream = try ContinualStream(classNames: ["x", "y"], domains: try Self.domains())
        let probe = FeatureClassifier(inputSize: 4, hiddenSize: nil, classCount: 2, seed: 0)
        let matrix = try ContinualLearning.train(probe, on: stream, schedule: ContinualSchedule(epochs: 20, batchSize: 8, learningRate: 0.05, seed: 1))
        #expect(matrix.rows.count == 2 && matrix.rows[0][1] == nil)
        #expect(matrix.rows[0][0]! > 0.9 && matrix.rows[1][1]! > 0.9, "\(matrix.rows)")
    }
}

extension DomainIncrementalStreams {
    @Test func forwardTransferIsTheAccuracyBeforeLearningMinusTheUntrainedLearners() throws {
        #expect(AccuracyMatrix(rows: [[0.9, nil], [0.8, 0.95]]).forwardTransfer == nil)
        let measured = AccuracyMatrix(rows: [[0.9, nil, nil], [0.8, 0.95, nil], [0.7, 0.9, 0.85]],
                                      untrained: [0.5, 0.4, 0.3], ahead: [0.6, 0.5])
        #expect(abs(measured.forwardTransfer! - ((0.6 - 0.4) + (0.5 - 0.3)) / 2) < 1e-12)

        // What the probe learns on domain A already sorts domain B, which the untrained probe cannot.
        let stream = try ContinualStream(classNames: ["x", "y"], domains: try Self.domains())
        let probe = FeatureClassifier(inputSize: 4, hiddenSize: nil, classCount: 2, seed: 0)
        let matrix = try ContinualLearning.train(probe, on: stream, schedule: ContinualSchedule(epochs: 20, batchSize: 8, learningRate: 0.05, seed: 1))
        #expect(matrix.untrained?.count == 2 && matrix.ahead?.count == 1)
        #expect(matrix.ahead![0] > 0.9 && matrix.forwardTransfer! > 0.3, "\(String(describing: matrix.untrained)) \(String(describing: matrix.ahead))")
    }
}

@Suite struct TaskRoutedLearnerTests {
    /// Expert `k` learns during task `k` only (later tasks leave it bit for bit), so the routed
    /// learner forgets only through routing mistakes: far less than one probe fine-tuned naively.
    @Test func eachExpertLearnsOnlyItsOwnTask() throws {
        let stream = try Blobs().stream
        let experts = (0..<4).map { FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2 &+ UInt64($0)) }
        let router = TaskRoutedLearner(experts: experts) { features, _ in features }
        let schedule = ContinualSchedule(epochs: 5, batchSize: 16, learningRate: 0.01, lossClasses: .task, seed: 1)
        var learned: [[Float]] = []
        let matrix = try ContinualLearning.train(router, on: stream, schedule: schedule) { _ in
            learned.append(experts[learned.count].output.weight.value.scalars)
        }
        #expect(learned.indices.allSatisfy { experts[$0].output.weight.value.scalars == learned[$0] })
        let naive = try ContinualLearning.train(FeatureClassifier(inputSize: 16, hiddenSize: nil, classCount: 8, seed: 2), on: stream,
                                                schedule: ContinualSchedule(epochs: 5, batchSize: 16, learningRate: 0.01, seed: 1))
        #expect(matrix.forgetting < naive.forgetting - 0.3 && matrix.averageAccuracy > naive.averageAccuracy + 0.3,
                "routed: \(matrix.averageAccuracy), forgetting \(matrix.forgetting); naive \(naive.averageAccuracy), \(naive.forgetting)")
    }

    /// The router picks the task whose prototype (normalised mean of its training rows) is nearest by
    /// cosine, and scores a row among that task's classes only.
    @Test func rowsGoToTheNearestTaskPrototypeAndItsClasses() throws {
        let experts = (0..<2).map { FeatureClassifier(inputSize: 2, hiddenSize: nil, classCount: 4, seed: UInt64($0)) }
        let router = TaskRoutedLearner(experts: experts) { features, _ in features }
        let rows = Tensor(shape: [4, 2], scalars: [1, 0.1, 2, -0.1, 0.1, 1, -0.2, 3])
        router.beginTask(0, classes: 0..<2, training: try router.encode(rows.slice(alongAxis: 0, 0..<2)))
        router.beginTask(1, classes: 2..<4, training: try router.encode(rows.slice(alongAxis: 0, 2..<4)))
        let test = try router.encode(Tensor(shape: [3, 2], scalars: [5, 1, 1, 5, 3, 2.9]))
        #expect(router.route(test) == [0, 1, 0])
        let logits = router.logits(test, tape: nil).value
        let direct = experts[1].logits(Tensor(shape: [1, 2], scalars: [1, 5]), tape: nil).value.scalars
        #expect(logits.scalars[4..<8].elementsEqual([-1e9, -1e9, direct[2], direct[3]]))
        #expect(logits.scalars[0..<4].suffix(2).allSatisfy { $0 == -1e9 })
    }
}

@Suite struct AdapterLearnerTests {
    let texts = ["water mawu a", "ndi wind a", "mawu", "a a a water wind ndi mawu", "wind", "ndi", "water a"]

    func rows(_ backbone: Backbone) throws -> LabelledFeatures {
        try LabelledFeatures(tokenIDs: texts.map { backbone.tokenizer.encode($0, maxLength: 16) }, labels: texts.indices.map { $0 % 4 }, width: 16)
    }

    @Test func tokenIDRowsRoundTripAndFeaturesAreRefused() throws {
        let backbone = try TinyBackbone.make()
        let ids = texts.map { backbone.tokenizer.encode($0, maxLength: 16) }
        #expect(try LabelledFeatures.tokenIDs(of: try rows(backbone).features) == ids)
        #expect(throws: ContinualError.self) { try LabelledFeatures(tokenIDs: ids, labels: [0], width: 16) }
        #expect(throws: ContinualError.invalidData("text 1 has 3 token ids; rows hold 2")) {
            try LabelledFeatures(tokenIDs: [[1, 2, 3]], labels: [0], width: 2)
        }
        let learner = try AdapterLearner(backbone: backbone, adapter: try AdapterConfiguration(method: "seq_bn"), classCount: 2, seed: 0)
        #expect(throws: ContinualError.invalidData("row 1 is not token ids followed by -1s: are these features rather than texts?")) {
            try learner.encode(Tensor(shape: [1, 3], scalars: [0.25, -0.5, 1]))
        }
    }

    /// Only the adapter and the head train (the backbone stays bit for bit), and scoring in small
    /// batches gives what scoring at once does.
    @Test func onlyTheAdapterAndHeadLearnAndScoringIsBatchedFaithfully() throws {
        let backbone = try TinyBackbone.make()
        let frozen = backbone.encoder.namedParameters().map(\.parameter.value)
        let learner = try AdapterLearner(backbone: backbone, adapter: try AdapterConfiguration(method: "seq_bn"), classCount: 4, seed: 0)
        let data = try rows(backbone)
        let stream = try ContinualStream(classNames: ["a", "b", "c", "d"], classesPerTask: [2, 2], train: data, test: data)
        let head = learner.classifier.head.namedParameters().map(\.parameter.value)
        _ = try ContinualLearning.train(learner, on: stream, schedule: ContinualSchedule(epochs: 2, batchSize: 3, learningRate: 0.01, seed: 0))
        #expect(backbone.encoder.namedParameters().map(\.parameter.value) == frozen)
        #expect(learner.classifier.head.namedParameters().map(\.parameter.value) != head)
        #expect(learner.trainableParameters().count == learner.adapter.namedParameters().count + head.count)
        let encoded = try learner.encode(data.features)
        let atOnce = learner.logits(encoded, tape: nil).value
        learner.inferenceBatchSize = 2
        let inPairs = learner.logits(encoded, tape: nil).value
        #expect(atOnce.shape == [texts.count, 4] && zip(atOnce.scalars, inPairs.scalars).allSatisfy { abs($0 - $1) <= 1e-5 })
        #expect(learner.frozenEmbeddings(encoded).shape == [texts.count, backbone.configuration.hiddenSize])
    }
}
