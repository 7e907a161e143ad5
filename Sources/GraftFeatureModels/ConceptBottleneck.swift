import GraftAutodiff
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor
import GraftTrain

// MARK: Data, errors, training

/// Examples for concept bottleneck models: inputs, binary concepts and classes.
public struct ConceptDataset: Sendable {
    /// `[n, d]` inputs (e.g. frozen sentence embeddings).
    public let inputs: Tensor
    /// `[n, k]` true concepts, each 0 or 1.
    public let concepts: Tensor
    /// One class index in `0..<classCount` per example.
    public let labels: [Int]
    /// The number of classes (at least 2).
    public let classCount: Int

    /// Checks and wraps the examples.
    /// - Throws: `ConceptError` if the shapes disagree, a label is outside
    ///   `0..<classCount` or a concept is neither 0 nor 1; `ConfigurationError` if `classCount < 2`.
    public init(inputs: Tensor, concepts: Tensor, labels: [Int], classCount: Int) throws {
        guard inputs.rank == 2 else { throw ConceptError.shape("inputs must be [examples, features], got \(inputs.shape)") }
        let n = inputs.shape[0]
        guard concepts.rank == 2, concepts.shape[0] == n else {
            throw ConceptError.shape("concepts must be [\(n), concepts] for \(n) inputs, got \(concepts.shape)")
        }
        guard labels.count == n else { throw ConceptError.shape("expected \(n) labels (one per input), got \(labels.count)") }
        guard classCount >= 2 else { throw ConfigurationError("a classifier needs at least 2 classes, got \(classCount)") }
        if let (example, label) = labels.enumerated().first(where: { !(0..<classCount).contains($0.element) }) {
            throw ConceptError.labelOutOfRange(example: example, label: label, classCount: classCount)
        }
        if let bad = concepts.scalars.firstIndex(where: { $0 != 0 && $0 != 1 }) {
            let k = concepts.shape[1]
            throw ConceptError.nonBinaryConcept(example: bad / k, concept: bad % k, value: concepts.scalars[bad])
        }
        self.inputs = inputs
        self.concepts = concepts
        self.labels = labels
        self.classCount = classCount
    }

    /// The number of examples `n`.
    public var count: Int { labels.count }
    /// The input width `d`.
    public var featureCount: Int { inputs.shape[1] }
    /// The number of concepts `k`.
    public var conceptCount: Int { concepts.shape[1] }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> ConceptDataset {
        ConceptDataset(checked: inputs.gatherRows(indices), concepts: concepts.gatherRows(indices),
                       labels: indices.map { labels[$0] }, classCount: classCount)
    }

    private init(checked inputs: Tensor, concepts: Tensor, labels: [Int], classCount: Int) {
        (self.inputs, self.concepts, self.labels, self.classCount) = (inputs, concepts, labels, classCount)
    }
}

/// A concept bottleneck model or its data that cannot be used; each case says what was expected and found.
public enum ConceptError: Error, CustomStringConvertible, Equatable {
    /// The data's concepts per example differ from the model's (training, evaluation).
    case conceptCount(expected: Int, found: Int)
    /// Inputs whose width is not the expected feature count.
    case featureCount(expected: Int, found: Int)
    /// The training data's number of classes differs from the model's.
    case classCount(expected: Int, found: Int)
    /// The example at index `example` has a label outside `0..<classCount`.
    case labelOutOfRange(example: Int, label: Int, classCount: Int)
    /// A true concept that is neither 0 nor 1: the example's index, the concept's index and its value.
    case nonBinaryConcept(example: Int, concept: Int, value: Float)
    /// Any other shape or count that does not fit (no examples, labels not one per input, a bad intervention), described.
    case shape(String)
    /// Saving, prediction or inference before training; `model` names the kind of model.
    case notTrained(model: String)

    /// A one-line message naming what was expected and what was found.
    public var description: String {
        switch self {
        case let .conceptCount(expected, found): "expected \(expected) concepts per example, found \(found)"
        case let .featureCount(expected, found): "expected inputs with \(expected) features, found \(found)"
        case let .classCount(expected, found): "expected \(expected) classes, found \(found)"
        case let .labelOutOfRange(example, label, classCount):
            "example \(example) has label \(label); expected a class in 0..<\(classCount)"
        case let .nonBinaryConcept(example, concept, value):
            "example \(example), concept \(concept) is \(value); expected 0 or 1"
        case .shape(let detail): detail
        case .notTrained(let model): "the \(model) model is not trained; train it before predicting"
        }
    }
}

/// Makes the optimizer of a list of parameters, e.g. `{ AdamW(parameters: $0, learningRate: 1e-2) }`.
public typealias OptimizerFactory = ([Parameter]) -> any Optimizer

/// The training loop of the models on frozen features: for each batch, `loss(batch, tape)`
/// is recorded on a fresh tape, differentiated, and `optimizer` steps. Returns each batch's loss.
@discardableResult
public func optimise<Batches: Sequence>(_ optimizer: any Optimizer, over batches: Batches,
                                        loss: (Batches.Element, Tape) -> Variable) -> [Float] {
    batches.map { batch in
        let tape = Tape()
        let value = loss(batch, tape)
        tape.backward(value)
        optimizer.step()
        return value.value.scalar
    }
}

/// Full-batch training: `steps` updates of a fresh optimizer of `parameters`
/// on the gradient of `loss` (recorded on the given tape). Returns the losses.
@discardableResult
public func minimise(_ parameters: [Parameter], steps: Int, optimizer makeOptimizer: OptimizerFactory,
                     loss: (Tape) -> Variable) -> [Float] {
    optimise(makeOptimizer(parameters), over: repeatElement((), count: steps)) { _, tape in loss(tape) }
}

extension ConceptDataset {
    /// Throws unless there are examples and they fit a model of the given sizes.
    func check(features: Int, concepts: Int, classes: Int) throws {
        guard count > 0 else { throw ConceptError.shape("expected at least one training example, found none") }
        guard featureCount == features else { throw ConceptError.featureCount(expected: features, found: featureCount) }
        guard conceptCount == concepts else { throw ConceptError.conceptCount(expected: concepts, found: conceptCount) }
        guard classCount == classes else { throw ConceptError.classCount(expected: classes, found: classCount) }
    }
}

// MARK: Prediction, intervention, evaluation

/// Test-time intervention: the concepts marked in `known` take the values in `truth`.
public struct ConceptIntervention: Sendable {
    /// `[n, k]`, 1 where the true concept is given.
    public let known: Tensor
    /// `[n, k]` true concepts (only read where `known` is 1).
    public let truth: Tensor

    /// Both `[n, k]`; models check the shapes when they predict.
    public init(known: Tensor, truth: Tensor) {
        self.known = known
        self.truth = truth
    }

    /// `values` with the known entries replaced by the truth (exactly).
    public func apply(to values: Tensor) -> Tensor { values * (known * -1 + 1) + known * truth }

    /// `values` with the known entries replaced by the truth, as an operation (no gradient to replaced entries).
    func apply(to values: Variable) -> Variable { values * Variable(known * -1 + 1) + Variable(known * truth) }

    /// Throws unless this intervention covers `count` examples of `concepts` concepts.
    func check(count: Int, concepts: Int) throws {
        guard known.shape == [count, concepts], truth.shape == [count, concepts] else {
            throw ConceptError.shape("an intervention on \(count) inputs must be [\(count), \(concepts)], got known \(known.shape) and truth \(truth.shape)")
        }
    }
}

/// What a concept bottleneck model predicts for a batch of inputs.
public struct ConceptPrediction: Sendable {
    /// `[n, k]` concept probabilities (1 or 0 where a model decides without a probability).
    public let concepts: Tensor
    /// The predicted class of each input.
    public let classes: [Int]
}

/// A trained model that predicts classes through concepts and accepts true concepts at test time.
public protocol ConceptBottleneck: AnyObject {
    /// The number of concepts `k` it predicts.
    var conceptCount: Int { get }
    /// Predictions for `[n, d]` inputs, with `intervention`'s concepts given.
    /// - Throws: `ConceptError.notTrained` before training; `ConceptError` for inputs of the wrong width.
    func predict(_ inputs: Tensor, intervention: ConceptIntervention?) throws -> ConceptPrediction
}

/// Concept and class accuracy on test data, and the intervention curve.
public struct ConceptEvaluation: Sendable, Codable, Equatable {
    /// The fraction of (example, concept) pairs predicted right (probability > 0.5 versus the truth).
    public let conceptAccuracy: Double
    /// The fraction of examples whose class is predicted right, without intervention (the curve's first point).
    public let classAccuracy: Double
    /// Class accuracy with 0, 1, ..., G concept groups replaced by their true values.
    public let interventionCurve: [Double]

    /// An evaluation of the given accuracies (fractions in `0...1`).
    public init(conceptAccuracy: Double, classAccuracy: Double, interventionCurve: [Double]) {
        (self.conceptAccuracy, self.classAccuracy, self.interventionCurve) = (conceptAccuracy, classAccuracy, interventionCurve)
    }
}

extension ConceptBottleneck {
    /// Scores the model on `data`. The intervention curve gives the class
    /// accuracy after intervening on `g = 0...groups.count` groups of concepts
    /// (default: each concept its own group), the groups drawn in an independent
    /// random order for each example, averaged over `orders` draws.
    /// - Throws: `ConceptError` if the data does not fit the model or it is not trained; `ConfigurationError`
    ///   if a group member is outside `0..<conceptCount` or `orders < 1`.
    public func evaluate(_ data: ConceptDataset, groups: [[Int]]? = nil, orders: Int = 5, seed: UInt64 = 0) throws -> ConceptEvaluation {
        guard data.conceptCount == conceptCount else { throw ConceptError.conceptCount(expected: conceptCount, found: data.conceptCount) }
        let groups = groups ?? (0..<conceptCount).map { [$0] }
        if let bad = groups.joined().first(where: { !(0..<conceptCount).contains($0) }) {
            throw ConfigurationError("concept group member \(bad) is outside 0..<\(conceptCount)")
        }
        guard orders >= 1 else { throw ConfigurationError("intervention orders must be at least 1, got \(orders)") }
        func accuracy(_ classes: [Int]) -> Double {
            Double(zip(classes, data.labels).count(where: { $0 == $1 })) / Double(max(data.count, 1))
        }
        let plain = try predict(data.inputs, intervention: nil)
        let correct = zip(plain.concepts.scalars, data.concepts.scalars).count(where: { ($0 > 0.5 ? 1 : 0) == $1 })
        var curve = [accuracy(plain.classes)] + [Double](repeating: 0, count: groups.count)
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<orders {
            let permutations = (0..<data.count).map { _ in Array(groups.indices).shuffled(using: &generator) }
            var known = Tensor(zeros: data.concepts.shape)
            for step in groups.indices {
                for (example, order) in permutations.enumerated() {
                    for concept in groups[order[step]] { known[example, concept] = 1 }
                }
                let prediction = try predict(data.inputs, intervention: ConceptIntervention(known: known, truth: data.concepts))
                curve[step + 1] += accuracy(prediction.classes) / Double(orders)
            }
        }
        return ConceptEvaluation(conceptAccuracy: Double(correct) / Double(max(data.concepts.count, 1)),
                                 classAccuracy: curve[0], interventionCurve: curve)
    }
}

// MARK: CBM

/// How a concept bottleneck model's two parts are trained (Koh et al. 2020).
public enum CBMTraining: String, Codable, Sendable, CaseIterable {
    /// The concept predictor on the concepts; the label predictor on the *true* concepts.
    case independent
    /// The concept predictor first; then the label predictor on its (frozen) predicted concepts.
    case sequential
    /// Both at once: task loss + `conceptLossWeight` · concept loss.
    case joint
}

/// A concept bottleneck model: `x -> c` (a linear concept predictor with a
/// sigmoid per concept) `-> y` (a linear label predictor that sees only the
/// concept probabilities). Parameter names: `concepts.weight`, `concepts.bias`,
/// `label.weight`, `label.bias`; initialisation `N(0, 0.02)`, zero biases.
public final class ConceptBottleneckModel: Module, ConceptBottleneck {
    /// The concept predictor `x -> c`: `[d] -> [k]` concept logits (the sigmoid is applied after it).
    public let conceptPredictor: Linear
    /// The label predictor `c -> y`: `[k]` concept probabilities `-> [classes]` logits.
    public let labelPredictor: Linear
    /// How it was trained; `nil` before training.
    public private(set) var training: CBMTraining?
    /// The values an intervention gives a concept known to be absent (`off`) or present (`on`):
    /// 0 and 1 for independent training, whose label predictor learned on true concepts; for
    /// sequential and joint training, the 5th and 95th percentiles of the concept's predicted
    /// probability on the training inputs, as Koh et al. (2020) intervene, so that the label
    /// predictor sees values of the range it was trained on.
    public private(set) var interventionLevels: (off: [Float], on: [Float])?

    /// The input width `d`.
    public var featureCount: Int { conceptPredictor.inputSize }
    /// The number of concepts `k`.
    public var conceptCount: Int { conceptPredictor.outputSize }
    /// The number of classes.
    public var classCount: Int { labelPredictor.outputSize }

    /// An untrained model for `featureCount` input features, `conceptCount` concepts and
    /// `classCount` classes, initialised from `seed`.
    public init(featureCount: Int, conceptCount: Int, classCount: Int, seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        conceptPredictor = Linear(inputSize: featureCount, outputSize: conceptCount, generator: &generator)
        labelPredictor = Linear(inputSize: conceptCount, outputSize: classCount, generator: &generator)
    }

    /// The concept predictor (`concepts`) and the label predictor (`label`).
    public var children: [(name: String, module: any Module)] { [("concepts", conceptPredictor), ("label", labelPredictor)] }

    /// The value of the `format` attribute of saved concept bottleneck models.
    public static let format = "graft-cbm/1"

    private struct Stored: Codable {
        var featureCount: Int, conceptCount: Int, classCount: Int, training: CBMTraining
        var interventionOff: [Float]?, interventionOn: [Float]?
    }

    /// Writes the trained weights, the sizes and the training mode (`WeightsFile`, atomic).
    public func save(to path: String) throws {
        guard let training else { throw ConceptError.notTrained(model: "concept bottleneck") }
        let stored = Stored(featureCount: conceptPredictor.inputSize, conceptCount: conceptPredictor.outputSize,
                            classCount: labelPredictor.outputSize, training: training,
                            interventionOff: interventionLevels?.off, interventionOn: interventionLevels?.on)
        try WeightsFile.write(self, format: Self.format, configuration: stored, to: path)
    }

    /// The model written by `save(to:)`.
    /// - Throws: `FileContentError` for another kind of file, `ParameterLoadingError` or `HDF5Error` naming a bad weight.
    public static func load(from path: String) throws -> ConceptBottleneckModel {
        let stored = try WeightsFile.configuration(Stored.self, format: format, at: path)
        let model = ConceptBottleneckModel(featureCount: stored.featureCount, conceptCount: stored.conceptCount,
                                           classCount: stored.classCount, seed: 0)
        try WeightsFile.read(into: model, from: path)
        model.training = stored.training
        if let off = stored.interventionOff, let on = stored.interventionOn {
            guard off.count == stored.conceptCount, on.count == stored.conceptCount else {
                throw ConceptError.shape("\(path): intervention levels for \(off.count) and \(on.count) concepts, expected \(stored.conceptCount)")
            }
            model.interventionLevels = (off, on)
        }
        return model
    }

    /// Trains both parts on `data` in `mode` (full batch, `steps` updates per part
    /// for independent and sequential training). The joint loss is
    /// cross-entropy + `conceptLossWeight` · binary cross-entropy (default 1; the reference's 0.01 leaves a linear concept predictor
    /// on small data without concepts: Docs/concepts-experiment.md).
    /// - Returns: the task losses of the label predictor's updates.
    /// - Throws: `ConceptError` if `data` does not fit the model.
    @discardableResult
    public func train(_ data: ConceptDataset, mode: CBMTraining, steps: Int, conceptLossWeight: Float = 1,
                      optimizer: OptimizerFactory) throws -> [Float] {
        try data.check(features: featureCount, concepts: conceptCount, classes: classCount)
        let inputs = Variable(data.inputs)
        func conceptLoss(_ tape: Tape) -> Variable {
            Variable.binaryCrossEntropy(logits: conceptPredictor(inputs, tape: tape), targets: data.concepts)
        }
        func taskLoss(_ concepts: Variable, _ tape: Tape) -> Variable {
            Variable.crossEntropy(logits: labelPredictor(concepts, tape: tape), targets: data.labels)
        }
        let concepts = conceptPredictor.namedParameters().map(\.parameter), labels = labelPredictor.namedParameters().map(\.parameter)
        let losses: [Float]
        switch mode {
        case .independent:
            minimise(concepts, steps: steps, optimizer: optimizer, loss: conceptLoss)
            losses = minimise(labels, steps: steps, optimizer: optimizer) { taskLoss(Variable(data.concepts), $0) }
        case .sequential:
            minimise(concepts, steps: steps, optimizer: optimizer, loss: conceptLoss)
            let predicted = Variable(conceptProbabilities(data.inputs))
            losses = minimise(labels, steps: steps, optimizer: optimizer) { taskLoss(predicted, $0) }
        case .joint:
            losses = minimise(concepts + labels, steps: steps, optimizer: optimizer) { tape in
                taskLoss(conceptPredictor(inputs, tape: tape).sigmoid(), tape) + conceptLoss(tape) * conceptLossWeight
            }
        }
        training = mode
        interventionLevels = mode == .independent ? nil : Self.percentileLevels(conceptProbabilities(data.inputs))
        return losses
    }

    /// Per concept (column of `[n, k]` probabilities), the 5th and 95th percentiles (nearest rank).
    static func percentileLevels(_ probabilities: Tensor) -> (off: [Float], on: [Float]) {
        let (n, k) = (probabilities.shape[0], probabilities.shape[1])
        let columns = (0..<k).map { j in (0..<n).map { probabilities.scalars[$0 * k + j] }.sorted() }
        func rank(_ fraction: Double) -> Int { min(n - 1, max(0, Int((fraction * Double(n)).rounded(.up)) - 1)) }
        return (columns.map { $0[rank(0.05)] }, columns.map { $0[rank(0.95)] })
    }

    /// `[n, k]` concept probabilities of `[n, d]` inputs.
    func conceptProbabilities(_ inputs: Tensor) -> Tensor { conceptPredictor(Variable(inputs)).value.sigmoid() }

    /// The sigmoid concept probabilities and the label predictor's highest-scoring class on them;
    /// an intervention first sets each known concept to its `interventionLevels` value
    /// (0 or 1 after independent training).
    /// - Throws: `ConceptError.notTrained` before training; `ConceptError` for inputs or an intervention of the wrong shape.
    public func predict(_ inputs: Tensor, intervention: ConceptIntervention?) throws -> ConceptPrediction {
        guard training != nil else { throw ConceptError.notTrained(model: "concept bottleneck") }
        try checkInputs(inputs, features: featureCount)
        try intervention?.check(count: inputs.shape[0], concepts: conceptCount)
        var concepts = conceptProbabilities(inputs)
        if let intervention {
            var truth = intervention.truth
            if let (off, on) = interventionLevels {
                let k = conceptCount
                for i in truth.scalars.indices { truth.scalars[i] = off[i % k] + truth.scalars[i] * (on[i % k] - off[i % k]) }
            }
            concepts = ConceptIntervention(known: intervention.known, truth: truth).apply(to: concepts)
        }
        return ConceptPrediction(concepts: concepts, classes: labelPredictor(Variable(concepts)).value.argmax())
    }
}

/// Throws unless `inputs` is `[n, features]`.
func checkInputs(_ inputs: Tensor, features: Int) throws {
    guard inputs.rank == 2 else { throw ConceptError.shape("inputs must be [examples, \(features)], got \(inputs.shape)") }
    guard inputs.shape[1] == features else { throw ConceptError.featureCount(expected: features, found: inputs.shape[1]) }
}
