import Foundation
import GraftAutodiff
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import GraftTrain
import Testing
@testable import GraftFeatureModels

/// A synthetic rule: three binary concepts, the class is `2 c0 + c1` (c2 is a
/// distractor), and the inputs are a fixed random linear image of `2c - 1` plus noise.
func conceptRule(count: Int, noise: Float, seed: UInt64) throws -> ConceptDataset {
    var generator = SeededGenerator(seed: seed)
    let mixing = Tensor.normal(shape: [3, 6], generator: &generator)
    let concepts = Tensor(shape: [count, 3]) { _ in generator.nextUnitFloat() < 0.5 ? 0 : 1 }
    let inputs = Tensor.matmul(concepts * 2 + -1, mixing) + Tensor.normal(shape: [count, 6], standardDeviation: noise, generator: &generator)
    let labels = (0..<count).map { Int(2 * concepts[$0, 0] + concepts[$0, 1]) }
    return try ConceptDataset(inputs: inputs, concepts: concepts, labels: labels, classCount: 4)
}

@Suite struct ConceptBottleneckTests {
    let optimizer: OptimizerFactory = { SGD(parameters: $0, learningRate: 1) }

    @Test(arguments: CBMTraining.allCases)
    func everyTrainingModeLearnsTheRule(mode: CBMTraining) throws {
        let data = try conceptRule(count: 144, noise: 0.1, seed: 1)
        let (train, test) = (data.subset(Array(0..<96)), data.subset(Array(96..<144)))
        let model = ConceptBottleneckModel(featureCount: 6, conceptCount: 3, classCount: 4, seed: 0)
        let losses = try model.train(train, mode: mode, steps: 400, optimizer: optimizer)
        #expect(losses.last! < losses.first!)
        let evaluation = try model.evaluate(test)
        #expect(evaluation.classAccuracy > 0.9, "\(mode): class accuracy \(evaluation.classAccuracy)")
        if mode != .joint { #expect(evaluation.conceptAccuracy > 0.9, "\(mode): concept accuracy \(evaluation.conceptAccuracy)") }
    }

    /// With noisy inputs the concepts are often wrong; giving all of them back gives the rule's accuracy (1).
    @Test func interventionWithAllTrueConceptsGivesTheRulesAccuracy() throws {
        let data = try conceptRule(count: 144, noise: 1.5, seed: 3)
        let (train, test) = (data.subset(Array(0..<96)), data.subset(Array(96..<144)))
        let model = ConceptBottleneckModel(featureCount: 6, conceptCount: 3, classCount: 4, seed: 0)
        try model.train(train, mode: .independent, steps: 400, optimizer: optimizer)
        let curve = try model.evaluate(test, orders: 3, seed: 1).interventionCurve
        #expect(curve.count == 4 && curve[0] < 0.95 && curve[3] == 1, "curve \(curve)")
        let grouped = try model.evaluate(test, groups: [[0, 1], [2]], orders: 2).interventionCurve
        #expect(grouped.count == 3 && grouped[2] == 1)
    }

    /// Sequential and joint models are given a known concept at its 5th/95th training percentile
    /// (nearest rank), independent ones at 0/1 (Koh et al. 2020).
    @Test func interventionsUseTheTrainingPercentilesOfPredictedConcepts() throws {
        let levels = ConceptBottleneckModel.percentileLevels(Tensor(shape: [20, 2]) { i in i % 2 == 0 ? Float(i / 2) / 10 : 1 - Float(i / 2) / 20 })
        // Column 0 holds 0, 0.1, ..., 1.9, column 1 holds 1, 0.95, ..., 0.05: ranks 1 and 19 of 20.
        #expect(zip(levels.off + levels.on, [0, 0.05, 1.8, 0.95]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(levels)")
        let data = try conceptRule(count: 96, noise: 0.5, seed: 4)
        for mode in CBMTraining.allCases {
            let model = ConceptBottleneckModel(featureCount: 6, conceptCount: 3, classCount: 4, seed: 0)
            try model.train(data, mode: mode, steps: 50, optimizer: optimizer)
            let known = Tensor(shape: [96, 3]) { $0 % 3 == 0 ? 1 : 0 }
            let given = try model.predict(data.inputs, intervention: ConceptIntervention(known: known, truth: data.concepts)).concepts
            let (off, on) = model.interventionLevels ?? ([0, 0, 0], [1, 1, 1])
            #expect((mode == .independent) == (model.interventionLevels == nil))
            for row in 0..<96 { #expect(given[row, 0] == (data.concepts[row, 0] == 1 ? on[0] : off[0])) }
        }
    }

    @Test func laboLearnsFromConceptSimilarities() throws {
        // Concept sentences along the axes; class y owns concept y; inputs near their class's axis.
        let concepts = Tensor(shape: [3, 3]) { $0 % 4 == 0 ? 1 : 0 }
        var generator = SeededGenerator(seed: 5)
        let labels = (0..<30).map { $0 % 3 }
        let inputs = Tensor(shape: [30, 3]) { i in (i % 3 == labels[i / 3] ? 1 : 0) + 0.2 * generator.nextNormal() }
        let data = try ConceptDataset(inputs: inputs, concepts: Tensor(shape: [30, 3]) { i in i % 3 == labels[i / 3] ? 1 : 0 },
                                      labels: labels, classCount: 3)
        let labo = try LaBo(conceptEmbeddings: concepts, classConcepts: [[0], [1], [2]], scale: 5)
        #expect(labo.association.value[0, 0] == 1 && labo.association.value[0, 1] == 0)
        try labo.train(data, steps: 50, optimizer: optimizer)
        let evaluation = try labo.evaluate(data)
        #expect(evaluation.classAccuracy > 0.9 && evaluation.conceptAccuracy > 0.9)
        #expect(evaluation.interventionCurve.last == 1)
    }

    /// Three near-duplicate candidates and one different one: coverage picks one of the duplicates and the
    /// different one; discriminability alone picks the two most discriminative duplicates.
    @Test func submodularSelectionPrefersDiverseConcepts() throws {
        let concepts = Tensor(shape: [4, 3], scalars: [1, 0, 0, 0.99, 0.1, 0, 0.99, -0.1, 0, 0, 0, 1])
        let discriminability = Tensor(shape: [1, 4], scalars: [0.5, 0.5, 0.5, 0.4])
        let diverse = try ConceptSelection.select(candidates: [[0, 1, 2, 3]], concepts: concepts,
                                                  discriminability: discriminability, count: 2, weight: 0.5)
        #expect(diverse == [[0, 3]])
        let greedy = try ConceptSelection.select(candidates: [[0, 1, 2, 3]], concepts: concepts,
                                                 discriminability: Tensor(shape: [1, 4], scalars: [0.5, 0.6, 0.4, 0.3]), count: 2, weight: 1)
        #expect(greedy == [[1, 0]])
        // Discriminability: a concept aligned with class 1's inputs is specific to class 1.
        let d = try ConceptSelection.discriminability(concepts: Tensor(shape: [1, 2], scalars: [0, 1]),
                                                      inputs: Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]), labels: [0, 1], classCount: 2)
        #expect(d[1, 0] > 0.99)
    }

    @Test func energyInferenceReducesTheEnergyAndHonoursInterventions() throws {
        let data = try conceptRule(count: 80, noise: 0.1, seed: 6)
        let (train, test) = (data.subset(Array(0..<64)), data.subset(Array(64..<80)))
        var configuration = EnergyCBMConfiguration()
        (configuration.hiddenSize, configuration.embeddingSize, configuration.inferenceSteps) = (16, 4, 20)
        configuration.inferenceLearningRate = 0.1
        let model = try EnergyConceptBottleneck(featureCount: 6, conceptCount: 3, classCount: 4, configuration: configuration, seed: 0)
        let losses = try model.train(train, steps: 150, optimizer: { SGD(parameters: $0, learningRate: 0.1) })
        #expect(losses.last! < 0.7 * losses.first!)
        let result = try model.infer(test.inputs)
        #expect(zip(result.finalEnergy.scalars, result.initialEnergy.scalars).allSatisfy { $0 < $1 })
        let known = Tensor(repeating: 1, shape: test.concepts.shape)
        let clamped = try model.infer(test.inputs, intervention: ConceptIntervention(known: known, truth: test.concepts))
        #expect(clamped.conceptProbabilities == test.concepts)
        let energy = try model.energy(test.inputs, classProbabilities: clamped.classProbabilities, conceptProbabilities: test.concepts)
        #expect(energy.maxAbsDifference(clamped.finalEnergy) < 1e-4)
    }

    @Test func errorsNameWhatWasExpected() throws {
        let data = try conceptRule(count: 8, noise: 0.1, seed: 8)
        #expect(throws: ConceptError.labelOutOfRange(example: 1, label: 4, classCount: 4)) {
            try ConceptDataset(inputs: data.inputs, concepts: data.concepts, labels: [0, 4] + data.labels.dropFirst(2), classCount: 4)
        }
        #expect(throws: ConceptError.nonBinaryConcept(example: 0, concept: 0, value: 0.5)) {
            try ConceptDataset(inputs: data.inputs, concepts: data.concepts.map { _ in 0.5 }, labels: data.labels, classCount: 4)
        }
        let cbm = ConceptBottleneckModel(featureCount: 6, conceptCount: 4, classCount: 4, seed: 0)
        #expect(throws: ConceptError.conceptCount(expected: 4, found: 3)) { try cbm.train(data, mode: .joint, steps: 1, optimizer: optimizer) }
        #expect(throws: ConceptError.notTrained(model: "concept bottleneck")) { try cbm.predict(data.inputs, intervention: nil) }
        let labo = try LaBo(conceptEmbeddings: Tensor(zeros: [3, 6]), classConcepts: [[0], [1], [2], [0]])
        #expect(throws: ConceptError.notTrained(model: "LaBo")) { try labo.predict(data.inputs, intervention: nil) }
        #expect(throws: ConfigurationError.self) { try LaBo(conceptEmbeddings: Tensor(zeros: [3, 6]), classConcepts: [[0], [3]]) }
        let ecbm = try EnergyConceptBottleneck(featureCount: 6, conceptCount: 3, classCount: 4, seed: 0)
        #expect(throws: ConceptError.notTrained(model: "energy-based concept bottleneck")) { try ecbm.predict(data.inputs, intervention: nil) }
        try ecbm.train(data, steps: 1, optimizer: optimizer)
        #expect(throws: ConceptError.featureCount(expected: 6, found: 5)) {
            try ecbm.predict(Tensor(zeros: [2, 5]), intervention: nil)
        }
        #expect(ConceptError.conceptCount(expected: 4, found: 3).description == "expected 4 concepts per example, found 3")
    }
}

@Suite struct ConceptBottleneckFiles {
    @Test func trainedModelsRoundTripThroughTheirWeightFiles() throws {
        let data = try conceptRule(count: 96, noise: 0.3, seed: 2)
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = ConceptBottleneckModel(featureCount: 6, conceptCount: 3, classCount: 4, seed: 0)
        try model.train(data, mode: .joint, steps: 50, optimizer: { SGD(parameters: $0, learningRate: 1) })
        try model.save(to: path)
        let restored = try ConceptBottleneckModel.load(from: path)
        #expect(restored.training == .joint)
        #expect(restored.interventionLevels.map { [$0.off, $0.on] } == model.interventionLevels.map { [$0.off, $0.on] })
        let (a, b) = (try model.predict(data.inputs, intervention: nil), try restored.predict(data.inputs, intervention: nil))
        #expect(a.classes == b.classes && a.concepts == b.concepts)
        // Another kind of model cannot read the file, and a weight of the wrong shape is named.
        #expect(throws: FileContentError.self) { try LaBo.load(from: path) }
        try HDF5File(path: path, mode: .update).write(Tensor(zeros: [3, 5]), at: "concepts.weight")
        #expect(throws: ParameterLoadingError.shapeMismatch(name: "concepts.weight", expected: [3, 6], found: [3, 5])) {
            try ConceptBottleneckModel.load(from: path)
        }
    }

    /// The file holds the concept embeddings, the classes' concepts, scale and levels too, so the
    /// loaded model predicts exactly as the saved one, interventions included.
    @Test func laboRoundTripsWithItsEmbeddingsAndLevels() throws {
        let data = try conceptRule(count: 48, noise: 0.3, seed: 2)
        var generator = SeededGenerator(seed: 3)
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try LaBo(conceptEmbeddings: .normal(shape: [3, 6], generator: &generator), classConcepts: [[0], [1], [2], [0, 1]], scale: 5)
        #expect(throws: ConceptError.notTrained(model: "LaBo")) { try model.save(to: path) }
        try model.train(data, steps: 20, optimizer: { SGD(parameters: $0, learningRate: 1) })
        try model.save(to: path)
        let restored = try LaBo.load(from: path)
        #expect(restored.scale == 5 && restored.conceptEmbeddings == model.conceptEmbeddings && restored.classConcepts == model.classConcepts)
        let intervention = ConceptIntervention(known: Tensor(shape: data.concepts.shape) { $0 % 2 == 0 ? 1 : 0 }, truth: data.concepts)
        for given in [nil, intervention] {
            let (a, b) = (try model.predict(data.inputs, intervention: given), try restored.predict(data.inputs, intervention: given))
            #expect(a.classes == b.classes && a.concepts == b.concepts)
        }
        // Embeddings of another shape than the configuration says are refused, naming the tensor.
        try HDF5File(path: path, mode: .update).write(Tensor(zeros: [4, 6]), at: "concept_embeddings")
        #expect(throws: HDF5Error.shapeMismatch(file: path, dataset: "concept_embeddings", expected: [3, 6], found: [4, 6])) {
            try LaBo.load(from: path)
        }
    }

    /// The configuration travels with the weights: the loaded model infers exactly as the saved one.
    @Test func energyModelRoundTripsWithItsConfiguration() throws {
        let data = try conceptRule(count: 32, noise: 0.3, seed: 5)
        var configuration = EnergyCBMConfiguration()
        (configuration.hiddenSize, configuration.embeddingSize, configuration.inferenceSteps) = (8, 4, 5)
        configuration.conceptWeight = 0.5
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try EnergyConceptBottleneck(featureCount: 6, conceptCount: 3, classCount: 4, configuration: configuration, seed: 0)
        #expect(throws: ConceptError.notTrained(model: "energy-based concept bottleneck")) { try model.save(to: path) }
        try model.train(data, steps: 10, optimizer: { SGD(parameters: $0, learningRate: 0.1) })
        try model.save(to: path)
        let restored = try EnergyConceptBottleneck.load(from: path)
        #expect(restored.configuration == configuration)
        let (a, b) = (try model.infer(data.inputs), try restored.infer(data.inputs))
        #expect(a.classProbabilities == b.classProbabilities && a.conceptProbabilities == b.conceptProbabilities)
        #expect(a.finalEnergy == b.finalEnergy)
        // A concept bottleneck model's file is another format; an unreadable configuration is named.
        let cbm = ConceptBottleneckModel(featureCount: 6, conceptCount: 3, classCount: 4, seed: 0)
        try cbm.train(data, mode: .joint, steps: 1, optimizer: { SGD(parameters: $0, learningRate: 1) })
        try cbm.save(to: path)
        #expect(throws: FileContentError(source: path, detail: "expected format attribute \"graft-ecbm/1\", found \"graft-cbm/1\"")) {
            try EnergyConceptBottleneck.load(from: path)
        }
        try model.save(to: path)
        try HDF5File(path: path, mode: .update).setAttribute("{\"featureCount\": \"six\"}", named: "config")
        let unreadable = #expect(throws: FileContentError.self) { try EnergyConceptBottleneck.load(from: path) }
        #expect(unreadable?.description.hasPrefix("\(path): unreadable config attribute") == true)
    }
}

@Suite struct ConceptBottleneckGradients {
    /// The joint CBM objective (task cross-entropy on sigmoid concepts + 0.01 concept BCE)
    /// differentiated by the tape, against central differences over both predictors' weights.
    @Test func jointObjectiveGradientsMatchFiniteDifferences() throws {
        let data = try conceptRule(count: 12, noise: 0.3, seed: 4)
        let model = ConceptBottleneckModel(featureCount: 6, conceptCount: 3, classCount: 4, seed: 1)
        let parameters = model.namedParameters().map(\.parameter)
        let errors = parameterGradientErrors(parameters, epsilon: 3e-2) { tape in
            let logits = model.conceptPredictor(Variable(data.inputs), tape: tape)
            let task = Variable.crossEntropy(logits: model.labelPredictor(logits.sigmoid(), tape: tape), targets: data.labels)
            return task + Variable.binaryCrossEntropy(logits: logits, targets: data.concepts) * 0.01
        }
        // Measured: [7.6e-4, 9.3e-3, 7.9e-4, 4.4e-3]; the concept bias's small gradient is the
        // noisiest in Float32 central differences, hence 2e-2 (the ops themselves are checked at 1e-3).
        for (index, error) in errors.enumerated() { #expect(error < 2e-2, "parameter \(index): relative error \(error)") }
    }

    /// LaBo's training loss (cross-entropy of `scale · scores · softmax(W)ᵀ`) against central differences
    /// over a random association matrix `W`.
    @Test func laboLossGradientMatchesFiniteDifferences() throws {
        let data = try conceptRule(count: 12, noise: 0.3, seed: 4)
        var generator = SeededGenerator(seed: 2)
        let labo = try LaBo(conceptEmbeddings: .normal(shape: [5, 6], generator: &generator),
                            classConcepts: [[0], [1], [2], [3, 4]], scale: 2)
        labo.association.value = .normal(shape: [4, 5], generator: &generator)
        let scores = labo.conceptScores(data.inputs)
        let errors = parameterGradientErrors([labo.association], epsilon: 1e-2) { labo.loss(scores: scores, labels: data.labels, tape: $0) }
        // Measured 2.7e-5: the loss is smooth, so only Float32 rounding separates the two.
        #expect(errors[0] < 1e-3, "relative error \(errors[0])")
    }

    /// The ECBM's joint training loss (three contrastive energy losses) against central differences over
    /// every parameter: the feature layer, the concept and class embeddings and the three energy networks.
    @Test func energyLossGradientsMatchFiniteDifferences() throws {
        let data = try conceptRule(count: 12, noise: 0.3, seed: 4)
        var configuration = EnergyCBMConfiguration()
        (configuration.hiddenSize, configuration.embeddingSize, configuration.conceptWeight, configuration.globalWeight) = (5, 3, 0.7, 1.3)
        let model = try EnergyConceptBottleneck(featureCount: 6, conceptCount: 3, classCount: 4, configuration: configuration, seed: 1)
        let named = model.namedParameters()
        let errors = parameterGradientErrors(named.map(\.parameter), epsilon: 1e-3) { model.loss(data, tape: $0) }
        // The energy networks' output biases shift every class's (or both concept states') energy
        // alike, so their true gradient is 0: the tape's must be 0 up to rounding.
        for (name, parameter) in named where name.hasSuffix("output.bias") {
            #expect(abs(parameter.grad?.scalar ?? 0) < 1e-6, "\(name): gradient \(parameter.grad?.scalar ?? 0)")
        }
        // Measured at most 7.1e-3 (input_concept.left.bias; most below 3e-3). The step is small because
        // the ReLUs' kinks spoil central differences at larger steps (2e-3 gives 0.02, 1e-2 gives 0.09),
        // and Float32 rounding of the loss limits it from below; hence 2e-2, as for the joint CBM.
        for (name, error) in zip(named.map(\.name), errors) where !name.hasSuffix("output.bias") {
            #expect(error < 2e-2, "\(name): relative error \(error)")
        }
    }
}
