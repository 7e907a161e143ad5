import Foundation
import GraftAutodiff
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor
import GraftTrain

/// A scalar energy of a pair: `output(ReLU(left(a) + right(b)))`, the MLP of
/// the concatenation `[a; b]` with its first layer split in two, so that `a`
/// and `b` broadcast against each other (one `a` against every class, say).
/// Parameter names: `left.weight`, `left.bias`, `right.weight`, `output.weight`, `output.bias`.
public final class PairEnergy: Module {
    /// The first layer's part for `a`: `[leftSize] -> [hidden]`, with a bias.
    public let left: Linear
    /// The first layer's part for `b`: `[rightSize] -> [hidden]`, without a bias.
    public let right: Linear
    /// The second layer: `[hidden] -> [1]`, the energy.
    public let output: Linear

    init(leftSize: Int, rightSize: Int, hiddenSize: Int, generator: inout SeededGenerator) {
        // Kaiming-like scale, so that energies of random networks are not all near zero.
        left = Linear(inputSize: leftSize, outputSize: hiddenSize, standardDeviation: (2 / Float(leftSize)).squareRoot(), generator: &generator)
        right = Linear(inputSize: rightSize, outputSize: hiddenSize, bias: false,
                       standardDeviation: (2 / Float(rightSize)).squareRoot(), generator: &generator)
        output = Linear(inputSize: hiddenSize, outputSize: 1, standardDeviation: (1 / Float(hiddenSize)).squareRoot(), generator: &generator)
    }

    /// The layers `left`, `right` and `output`.
    public var children: [(name: String, module: any Module)] { [("left", left), ("right", right), ("output", output)] }

    /// Energies of `a` (`[..., leftSize]`) and `b` (`[..., rightSize]`), whose
    /// projections broadcast; the result drops the last axis. Parameters are
    /// recorded only on `tape` (nil: frozen, while the inputs may still be tracked).
    func callAsFunction(_ a: Variable, _ b: Variable, tape: Tape?) -> Variable {
        let hidden = (left(a, tape: tape) + right(b, tape: tape)).relu()
        let energies = output(hidden, tape: tape)
        return energies.reshaped(Array(energies.shape.dropLast()))
    }
}

/// Settings of an energy-based concept bottleneck model.
public struct EnergyCBMConfiguration: Codable, Sendable, Equatable {
    /// Width of the input features and of the energy networks' hidden layers.
    public var hiddenSize: Int = 64
    /// Width of the concept (positive, negative) and class embeddings.
    public var embeddingSize: Int = 16
    /// `λ_c`: weight of the input-concept energy (training loss and inference).
    public var conceptWeight: Float = 1
    /// `λ_g`: weight of the concept-class energy (training loss and inference).
    public var globalWeight: Float = 1
    /// Gradient-descent steps on the free logits at inference.
    public var inferenceSteps: Int = 100
    /// Step size of that gradient descent.
    public var inferenceLearningRate: Float = 0.5

    /// The defaults: hidden size 64, embeddings of 16, both energy weights 1, 100 inference
    /// steps of size 0.5.
    public init() {}

    func validate() throws {
        guard hiddenSize >= 1, embeddingSize >= 1 else {
            throw ConfigurationError("ECBM sizes must be positive, got hidden \(hiddenSize), embedding \(embeddingSize)")
        }
        guard conceptWeight >= 0, globalWeight >= 0 else {
            throw ConfigurationError("ECBM energy weights must not be negative, got \(conceptWeight) and \(globalWeight)")
        }
        guard inferenceSteps >= 0, inferenceLearningRate > 0 else {
            throw ConfigurationError("ECBM inference needs steps >= 0 and a positive step size, got \(inferenceSteps) and \(inferenceLearningRate)")
        }
    }
}

/// An energy-based concept bottleneck model (ECBM, Xu et al. 2024).
///
/// With input features `z = ReLU(features(x))`, each concept `k` has a positive
/// and a negative embedding `v⁺_k`, `v⁻_k`, and a concept probability `p_k`
/// stands for `v_k = v⁻_k + p_k (v⁺_k - v⁻_k)`; a class distribution `q` stands
/// for `u = q U` (class embeddings `U`). Three energy networks score:
/// - input-class `E_class(z, u)`,
/// - input-concept `E_concept(z, v) = Σ_k E(z, v_k)`,
/// - concept-class `E_global([v_1; ...; v_k], u)`.
///
/// Training (jointly, full batch) minimises, each network with the contrastive
/// loss `E(positive) + log Σ exp(-E)`: cross-entropy of `-E_class(z, u_y)` over
/// the classes, of `-E_global(v_true, u_y)` over the classes, and per concept of
/// `-E(z, v⁺_k)` against `-E(z, v⁻_k)`; the total is
/// `L_class + λ_c L_concept + λ_g L_global`.
///
/// Prediction minimises `E_class + λ_c E_concept + λ_g E_global` over free class
/// and concept logits (`q = softmax`, `p = sigmoid`) by gradient descent with the
/// networks frozen (the tape differentiates with respect to the logits only),
/// starting from each network's own answer (`-E_class` over the classes and
/// `E(z, v⁻_k) - E(z, v⁺_k)`). Intervention clamps the known concepts' `p` to
/// their true values and re-optimises the rest.
public final class EnergyConceptBottleneck: Module, ConceptBottleneck {
    /// The settings; `load(from:)` replaces them with the saved model's.
    public private(set) var configuration: EnergyCBMConfiguration
    /// The input layer `x -> z`: `[d] -> [hiddenSize]`, ReLU after it.
    public let features: Linear
    /// The trained embeddings: each concept's positive `v⁺_k` and negative `v⁻_k` (`[k, embeddingSize]`
    /// each) and the classes' `U` (`[classes, embeddingSize]`).
    public let positive: Parameter, negative: Parameter, classEmbeddings: Parameter
    /// The energy networks `E_class(z, u)`, `E(z, v_k)` (summed over the concepts: `E_concept`)
    /// and `E_global([v_1; ...; v_k], u)`.
    public let inputClass: PairEnergy, inputConcept: PairEnergy, conceptClass: PairEnergy
    /// Whether the model was trained (or loaded); inference and saving need it.
    public private(set) var isTrained = false

    /// The input width `d`.
    public var featureCount: Int { features.inputSize }
    /// The number of concepts `k`.
    public var conceptCount: Int { positive.value.shape[0] }
    /// The number of classes.
    public var classCount: Int { classEmbeddings.value.shape[0] }

    /// An untrained model for `featureCount`-wide inputs, `conceptCount` concepts and `classCount` classes.
    /// - Throws: `ConfigurationError` for an invalid configuration, fewer than 2 classes or no concepts.
    public init(featureCount: Int, conceptCount: Int, classCount: Int,
                configuration: EnergyCBMConfiguration = EnergyCBMConfiguration(), seed: UInt64) throws {
        try configuration.validate()
        guard classCount >= 2, conceptCount >= 1 else {
            throw ConfigurationError("ECBM needs at least 2 classes and 1 concept, got \(classCount) and \(conceptCount)")
        }
        self.configuration = configuration
        let (h, e) = (configuration.hiddenSize, configuration.embeddingSize)
        var generator = SeededGenerator(seed: seed)
        features = Linear(inputSize: featureCount, outputSize: h, standardDeviation: (2 / Float(featureCount)).squareRoot(),
                          generator: &generator)
        positive = Parameter(.normal(shape: [conceptCount, e], generator: &generator))
        negative = Parameter(.normal(shape: [conceptCount, e], generator: &generator))
        classEmbeddings = Parameter(.normal(shape: [classCount, e], generator: &generator))
        inputClass = PairEnergy(leftSize: h, rightSize: e, hiddenSize: h, generator: &generator)
        inputConcept = PairEnergy(leftSize: h, rightSize: e, hiddenSize: h, generator: &generator)
        conceptClass = PairEnergy(leftSize: conceptCount * e, rightSize: e, hiddenSize: h, generator: &generator)
    }

    /// The embeddings: `concepts.positive`, `concepts.negative` and `classes`.
    public var localParameters: [(name: String, parameter: Parameter)] {
        [("concepts.positive", positive), ("concepts.negative", negative), ("classes", classEmbeddings)]
    }

    /// The input layer (`features`) and the energy networks `input_class`, `input_concept` and `concept_class`.
    public var children: [(name: String, module: any Module)] {
        [("features", features), ("input_class", inputClass), ("input_concept", inputConcept), ("concept_class", conceptClass)]
    }

    private func parameter(_ parameter: Parameter, _ tape: Tape?) -> Variable {
        tape.map { $0.variable(parameter) } ?? Variable(parameter.value)
    }

    private func hidden(_ inputs: Tensor, tape: Tape?) -> Variable { features(Variable(inputs), tape: tape).relu() }

    /// `[n, k, e]` concept embeddings for `[n, k]` concept probabilities.
    private func conceptVectors(_ probabilities: Variable, tape: Tape?) -> Variable {
        let (k, n) = (conceptCount, probabilities.shape[0])
        let low = parameter(negative, tape), high = parameter(positive, tape)
        return low + probabilities.reshaped([n, k, 1]) * (high - low)
    }

    /// Trains the three energy networks and the embeddings jointly on `data` (full batch).
    /// - Returns: the losses.
    /// - Throws: `ConceptError` if `data` does not fit the model.
    @discardableResult
    public func train(_ data: ConceptDataset, steps: Int, optimizer: OptimizerFactory) throws -> [Float] {
        try data.check(features: featureCount, concepts: conceptCount, classes: classCount)
        let losses = minimise(namedParameters().map(\.parameter), steps: steps, optimizer: optimizer) { loss(data, tape: $0) }
        isTrained = true
        return losses
    }

    /// The training loss `L_class + λ_c L_concept + λ_g L_global` on `data` (see the type's documentation).
    func loss(_ data: ConceptDataset, tape: Tape?) -> Variable {
        let (n, h) = (data.count, configuration.hiddenSize)
        let z = hidden(data.inputs, tape: tape).reshaped([n, 1, h])
        let classes = parameter(classEmbeddings, tape)
        let classLoss = Variable.crossEntropy(logits: -inputClass(z, classes, tape: tape), targets: data.labels)
        let margin = inputConcept(z, parameter(negative, tape), tape: tape) - inputConcept(z, parameter(positive, tape), tape: tape)
        let conceptLoss = Variable.binaryCrossEntropy(logits: margin, targets: data.concepts)
        let truth = conceptVectors(Variable(data.concepts), tape: tape).reshaped([n, 1, -1])
        let globalLoss = Variable.crossEntropy(logits: -conceptClass(truth, classes, tape: tape), targets: data.labels)
        return classLoss + conceptLoss * configuration.conceptWeight + globalLoss * configuration.globalWeight
    }

    /// The value of the `format` attribute of saved energy-based concept bottlenecks.
    public static let format = "graft-ecbm/1"

    private struct Stored: Codable {
        var featureCount: Int, conceptCount: Int, classCount: Int, configuration: EnergyCBMConfiguration
    }

    /// Writes the trained weights, the sizes and the configuration (`WeightsFile`, atomic).
    public func save(to path: String) throws {
        guard isTrained else { throw ConceptError.notTrained(model: "energy-based concept bottleneck") }
        let stored = Stored(featureCount: featureCount, conceptCount: conceptCount, classCount: classCount, configuration: configuration)
        try WeightsFile.write(self, format: Self.format, configuration: stored, to: path)
    }

    /// The model written by `save(to:)`, inferring as the saved one did (its configuration included).
    /// - Throws: `FileContentError` for another kind of file, `ConfigurationError` for invalid stored settings,
    ///   `ParameterLoadingError` or `HDF5Error` naming a bad weight.
    public static func load(from path: String) throws -> EnergyConceptBottleneck {
        let stored = try WeightsFile.configuration(Stored.self, format: format, at: path)
        let model = try EnergyConceptBottleneck(featureCount: stored.featureCount, conceptCount: stored.conceptCount,
                                                classCount: stored.classCount, configuration: stored.configuration, seed: 0)
        try WeightsFile.read(into: model, from: path)
        model.isTrained = true
        return model
    }

    /// `[n]` total energies `E_class + λ_c E_concept + λ_g E_global` of inputs with class
    /// probabilities `[n, classes]` and concept probabilities `[n, k]`, the networks frozen.
    func energy(_ z: Variable, classes: Variable, concepts: Variable) -> Variable {
        let n = z.shape[0]
        let u = Variable.matmul(classes, Variable(classEmbeddings.value))
        let v = conceptVectors(concepts, tape: nil)
        let conceptEnergy = inputConcept(z.reshaped([n, 1, -1]), v, tape: nil).sum(alongAxis: 1)
        return inputClass(z, u, tape: nil) + conceptEnergy * configuration.conceptWeight
            + conceptClass(v.reshaped([n, -1]), u, tape: nil) * configuration.globalWeight
    }

    /// The total energy of `[n, d]` inputs with the given class and concept probabilities, per input.
    public func energy(_ inputs: Tensor, classProbabilities: Tensor, conceptProbabilities: Tensor) throws -> Tensor {
        try checkInputs(inputs, features: featureCount)
        let n = inputs.shape[0]
        guard classProbabilities.shape == [n, classCount], conceptProbabilities.shape == [n, conceptCount] else {
            throw ConceptError.shape("expected class probabilities [\(n), \(classCount)] and concept probabilities [\(n), \(conceptCount)], "
                                     + "got \(classProbabilities.shape) and \(conceptProbabilities.shape)")
        }
        return energy(hidden(inputs, tape: nil), classes: Variable(classProbabilities), concepts: Variable(conceptProbabilities)).value
    }

    /// The result of inference: probabilities and the total energy per input before and after the descent.
    public struct Inference: Sendable {
        /// `[n, classes]`: `q`, the softmax of the optimised class logits.
        public let classProbabilities: Tensor
        /// `[n, k]`: `p`, the sigmoid of the optimised concept logits, known concepts clamped to their true values.
        public let conceptProbabilities: Tensor
        /// `[n]` total energies at the starting logits (each network's own answer).
        public let initialEnergy: Tensor
        /// `[n]` total energies after the `inferenceSteps` descent steps.
        public let finalEnergy: Tensor
    }

    /// Minimises the total energy over free class and concept logits (see the type's documentation).
    /// - Throws: `ConceptError` before training or for inputs or an intervention of the wrong shape.
    public func infer(_ inputs: Tensor, intervention: ConceptIntervention? = nil) throws -> Inference {
        guard isTrained else { throw ConceptError.notTrained(model: "energy-based concept bottleneck") }
        try checkInputs(inputs, features: featureCount)
        let n = inputs.shape[0]
        try intervention?.check(count: n, concepts: conceptCount)
        let z = hidden(inputs, tape: nil)
        var classLogits = (-inputClass(z.reshaped([n, 1, -1]), Variable(classEmbeddings.value), tape: nil)).value
        var conceptLogits = (inputConcept(z.reshaped([n, 1, -1]), Variable(negative.value), tape: nil)
            - inputConcept(z.reshaped([n, 1, -1]), Variable(positive.value), tape: nil)).value
        func probabilities(_ classes: Variable, _ concepts: Variable) -> (Variable, Variable) {
            let p = concepts.sigmoid()
            return (classes.softmax(), intervention.map { $0.apply(to: p) } ?? p)
        }
        func total(_ classes: Tensor, _ concepts: Tensor) -> Tensor {
            let (q, p) = probabilities(Variable(classes), Variable(concepts))
            return energy(z, classes: q, concepts: p).value
        }
        let initialEnergy = total(classLogits, conceptLogits)
        for _ in 0..<configuration.inferenceSteps {
            let tape = Tape()
            let (classes, concepts) = (tape.watch(classLogits), tape.watch(conceptLogits))
            let (q, p) = probabilities(classes, concepts)
            let gradients = tape.backward(energy(z, classes: q, concepts: p).sum())
            if let g = gradients[classes] { classLogits.add(g, scaledBy: -configuration.inferenceLearningRate) }
            if let g = gradients[concepts] { conceptLogits.add(g, scaledBy: -configuration.inferenceLearningRate) }
        }
        let (q, p) = probabilities(Variable(classLogits), Variable(conceptLogits))
        return Inference(classProbabilities: q.value, conceptProbabilities: p.value, initialEnergy: initialEnergy,
                         finalEnergy: total(classLogits, conceptLogits))
    }

    /// `infer`'s concept probabilities and the most probable class of each input.
    /// - Throws: `ConceptError` before training or for inputs or an intervention of the wrong shape.
    public func predict(_ inputs: Tensor, intervention: ConceptIntervention?) throws -> ConceptPrediction {
        let result = try infer(inputs, intervention: intervention)
        return ConceptPrediction(concepts: result.conceptProbabilities, classes: result.classProbabilities.argmax())
    }
}
