import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
import GraftTrain
@testable import GraftFeatureModels

/// `count` points of dimension `size`, `N(0, 1)`.
private func points(_ count: Int, _ size: Int, seed: UInt64) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return .normal(shape: [count, size], generator: &generator)
}

/// A small bottleneck (6 features, 3 heads of 8 keys of 2 dimensions, 4 values)
/// with keys initialised on random data and frozen.
private func frozenBottleneck(decoder: Int? = nil, seed: UInt64 = 0) throws -> KeyValueBottleneck {
    let configuration = KeyValueBottleneckConfiguration(inputSize: 6, heads: 3, keysPerHead: 8, keySize: 2, valueSize: 4,
                                                        decoderOutputs: decoder)
    let bottleneck = try KeyValueBottleneck(configuration: configuration, seed: seed)
    var generator = SeededGenerator(seed: seed)
    try bottleneck.initializeKeys(.kMeans(iterations: 3), data: points(40, 6, seed: 1), generator: &generator)
    try bottleneck.freezeKeys()
    return bottleneck
}

@Suite struct KeyValueBottleneckTests {
    @Test func onlySelectedValuesReceiveGradient() throws {
        let bottleneck = try frozenBottleneck()
        let codes = try bottleneck.codes(for: points(5, 6, seed: 2))
        let tape = Tape()
        tape.backward(try bottleneck.loss(codes, labels: [0, 1, 2, 3, 0], tape: tape))
        let grad = try #require(bottleneck.values.grad)
        let selected = Set(codes.indices)
        #expect(selected.count < 24, "some keys must stay unselected for the test to mean anything")
        for row in 0..<24 {
            let norm = (0..<4).map { abs(grad[row, $0]) }.reduce(0, +)
            #expect(selected.contains(row) ? norm > 0 : norm == 0, "row \(row): gradient norm \(norm)")
        }
        #expect(bottleneck.trainableParameters().map(\.name) == ["values"])
        #expect(bottleneck.keys.grad == nil && bottleneck.projection?.grad == nil)
    }

    @Test(arguments: [nil, 3])
    func valueGradientsMatchFiniteDifferences(decoder: Int?) throws {
        let bottleneck = try frozenBottleneck(decoder: decoder)
        let codes = try bottleneck.codes(for: points(7, 6, seed: 3))
        let labels = [0, 1, 2, 0, 1, 2, 1]
        let values = points(24, 4, seed: 4)
        let errors = GradientCheck.relativeErrors(inputs: [values]) {
            Variable.crossEntropy(logits: bottleneck.logits(codes, values: $0[0]), targets: labels)
        }
        #expect(errors[0] < 1e-3, "relative error \(errors[0])")
    }

    @Test func keysStayFrozenAfterInitialisation() throws {
        let bottleneck = try frozenBottleneck(decoder: 3)
        let (keys, projection) = (bottleneck.keys.value, bottleneck.projection!.value)
        var generator = SeededGenerator(seed: 5)
        #expect(throws: KeyValueBottleneckError.keysFrozen) {
            try bottleneck.refineKeys(data: points(20, 6, seed: 6), generator: &generator)
        }
        #expect(throws: KeyValueBottleneckError.keysFrozen) {
            try bottleneck.initializeKeys(.random, data: points(20, 6, seed: 6), generator: &generator)
        }
        let parameters = bottleneck.trainableParameters()
        #expect(parameters.map(\.name) == ["values", "decoder.weight", "decoder.bias"])
        let codes = try bottleneck.codes(for: points(16, 6, seed: 7))
        let before = bottleneck.values.value
        for _ in 0..<3 {
            let tape = Tape()
            tape.backward(try bottleneck.loss(codes, labels: (0..<16).map { $0 % 3 }, tape: tape))
            for (_, parameter) in parameters { parameter.value.add(parameter.grad!, scaledBy: -0.5); parameter.zeroGradient() }
        }
        #expect(bottleneck.values.value != before)
        #expect(bottleneck.keys.value == keys && bottleneck.projection!.value == projection)
        #expect(try bottleneck.codes(for: points(16, 6, seed: 7)) == codes)
    }

    @Test func emaRefinementMovesKeysTowardDataAndReplacesDeadCodes() throws {
        // Four tight clusters in the plane; keys 0-3 start off-centre, key 4 far from all data.
        let centres: [[Float]] = [[5, 5], [-5, 5], [5, -5], [-5, -5]]
        var generator = SeededGenerator(seed: 8)
        let data = Tensor(shape: [400, 2]) { i in centres[(i / 2) % 4][i % 2] + 0.3 * generator.nextNormal() }
        let configuration = KeyValueBottleneckConfiguration(inputSize: 2, heads: 1, keysPerHead: 5, keySize: 2, valueSize: 2,
                                                            splitter: .chunks)
        let bottleneck = try KeyValueBottleneck(configuration: configuration, seed: 0)
        try bottleneck.initializeKeys(.kMeans(iterations: 0), data: data, generator: &generator)
        let start: [Float] = centres.flatMap { [$0[0] + 1, $0[1] + 1] } + [100, 100]
        bottleneck.keys.value = Tensor(shape: [1, 5, 2], scalars: start)
        let replaced = try bottleneck.refineKeys(
            data: data, settings: KeyRefinement(epochs: 3, batchSize: 50, decay: 0.95, deadCodeThreshold: 0.5), generator: &generator)
        let keys = bottleneck.keys.value.scalars
        func distance(_ key: Int, _ centre: [Float]) -> Float {
            ((keys[2 * key] - centre[0]) * (keys[2 * key] - centre[0]) + (keys[2 * key + 1] - centre[1]) * (keys[2 * key + 1] - centre[1])).squareRoot()
        }
        for (key, centre) in centres.enumerated() {
            #expect(distance(key, centre) < 0.8, "key \(key) is \(distance(key, centre)) from its cluster, started at 1.41")
        }
        #expect(replaced >= 1)
        #expect(centres.map { distance(4, $0) }.min()! < 2, "the dead key was not moved to the data: \(keys[8...])")
    }

    /// Under plain SGD a step moves exactly the values its batch selected; AdamW's moments keep
    /// moving the values an earlier batch selected, which is how old classes get overwritten.
    @Test func sgdStepsLeaveUnselectedValuesExactlyAlone() throws {
        for kind in ContinualSchedule.OptimizerKind.allCases {
            let bottleneck = try frozenBottleneck()
            let optimizer = ContinualSchedule(learningRate: 0.1, optimizer: kind).makeOptimizer([bottleneck.values])
            let first = try bottleneck.codes(for: points(2, 6, seed: 2)), second = try bottleneck.codes(for: points(2, 6, seed: 3))
            for codes in [first, second] {
                let tape = Tape()
                tape.backward(try bottleneck.loss(codes, labels: [0, 1], tape: tape))
                if codes == second { break }
                optimizer.step()
            }
            let before = bottleneck.values.value
            optimizer.step()
            let onlyFirst = Set(first.indices).subtracting(second.indices)
            try #require(!onlyFirst.isEmpty)
            let moved = onlyFirst.filter { row in (0..<4).contains { bottleneck.values.value[row, $0] != before[row, $0] } }
            #expect(kind == .sgd ? moved.isEmpty : moved.count == onlyFirst.count, "\(kind): \(moved.count) of \(onlyFirst.count) moved")
        }
    }

    /// Inference averages over the heads whose selected value was trained; training averages over all.
    @Test func inferenceSkipsHeadsWhoseValueWasNeverTrained() throws {
        let bottleneck = try frozenBottleneck()
        var generator = SeededGenerator(seed: 5)
        bottleneck.values.value = .normal(shape: bottleneck.values.value.shape, generator: &generator)
        let codes = try bottleneck.codes(for: points(4, 6, seed: 6))
        let plainMean = bottleneck.logits(codes).value
        #expect(plainMean == bottleneck.logits(codes, values: Variable(bottleneck.values.value)).value)  // nothing trained yet
        bottleneck.recordTraining(codes.rows([0]))
        let trained = Set(codes.rows([0]).indices)
        let masked = bottleneck.logits(codes).value
        for row in 0..<4 {
            let heads = codes.rows([row]).indices.filter(trained.contains)
            for column in 0..<4 {
                let expected = heads.isEmpty ? 0 : heads.map { bottleneck.values.value[$0, column] }.reduce(0, +) / Float(heads.count)
                #expect(abs(masked[row, column] - expected) < 1e-6)
            }
        }
        #expect(bottleneck.logits(codes, tape: Tape()).value == plainMean)
        bottleneck.skipsUntrainedValues = false
        #expect(bottleneck.logits(codes).value == plainMean)
        try bottleneck.freezeKeys()
        #expect(!bottleneck.trainedValues.contains(true))
    }

    @Test func saveAndLoadRoundTrip() throws {
        let bottleneck = try frozenBottleneck(decoder: 3)
        var generator = SeededGenerator(seed: 9)
        bottleneck.values.value = .normal(shape: bottleneck.values.value.shape, generator: &generator)
        bottleneck.recordTraining(try bottleneck.codes(for: points(3, 6, seed: 11)))
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try bottleneck.save(to: path)
        let loaded = try KeyValueBottleneck.load(from: path)
        #expect(loaded.configuration == bottleneck.configuration && loaded.keyState == .frozen)
        #expect(loaded.trainedValues == bottleneck.trainedValues && bottleneck.trainedValues.contains(true))
        let expected = bottleneck.namedParameters(), found = loaded.namedParameters()
        #expect(found.map(\.name) == expected.map(\.name))
        for (a, b) in zip(expected, found) { #expect(a.parameter.value == b.parameter.value, "\(a.name)") }
        #expect(loaded.trainableParameters().map(\.name) == bottleneck.trainableParameters().map(\.name))
        let features = points(9, 6, seed: 10)
        #expect(try loaded.predict(features) == bottleneck.predict(features))

        let other = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let file = try HDF5File(path: other, mode: .create)
        try file.setAttribute("graft-adapter/1", named: "format")
        file.close()
        #expect(throws: KeyValueBottleneckError.notABottleneckFile(
            file: other, reason: "format attribute \"graft-adapter/1\", expected \"graft-kv-bottleneck/1\"")) {
            try KeyValueBottleneck.load(from: other)
        }
    }

    @Test func misuseThrowsClearErrors() throws {
        let configuration = KeyValueBottleneckConfiguration(inputSize: 6, heads: 3, keysPerHead: 8, keySize: 2, valueSize: 4)
        let bottleneck = try KeyValueBottleneck(configuration: configuration, seed: 0)
        let data = points(10, 6, seed: 11)
        var generator = SeededGenerator(seed: 12)
        let uninitialised = KeyValueBottleneckError.keysNotReady(operation: "look up keys for training or prediction", state: .uninitialized)
        #expect(throws: uninitialised) { try bottleneck.predict(data) }
        #expect(uninitialised.description.contains("not initialised"))
        #expect(throws: KeyValueBottleneckError.keysNotReady(operation: "refine the keys", state: .uninitialized)) {
            try bottleneck.refineKeys(data: data, generator: &generator)
        }
        #expect(throws: KeyValueBottleneckError.tooFewExamples(needed: 8, found: 5, purpose: "k-means key initialisation (one example per key)")) {
            try bottleneck.initializeKeys(.kMeans(iterations: 2), data: points(5, 6, seed: 13), generator: &generator)
        }
        #expect(throws: KeyValueBottleneckError.featureSizeMismatch(expected: 6, found: [10, 5])) {
            try bottleneck.initializeKeys(.random, data: points(10, 5, seed: 14), generator: &generator)
        }
        try bottleneck.initializeKeys(.random, data: data, generator: &generator)
        #expect(throws: KeyValueBottleneckError.keysNotReady(operation: "look up keys for training or prediction", state: .initialized)) {
            try bottleneck.codes(for: data)
        }
        try bottleneck.freezeKeys()
        #expect(throws: KeyValueBottleneckError.featureSizeMismatch(expected: 6, found: [6])) {
            try bottleneck.codes(for: Tensor(zeros: [6]))
        }
        let codes = try bottleneck.codes(for: data)
        let outOfRange = KeyValueBottleneckError.labelOutOfRange(label: 4, index: 2, classes: 4)
        #expect(throws: outOfRange) { try bottleneck.loss(codes, labels: [0, 1, 4, 0, 0, 0, 0, 0, 0, 0]) }
        #expect(outOfRange.description == "label 4 of example 2 is outside 0..<4 (the bottleneck's outputs)")
        #expect(throws: KeyValueBottleneckError.labelCountMismatch(labels: 2, examples: 10)) { try bottleneck.loss(codes, labels: [0, 1]) }
        #expect(throws: KeyValueBottleneckError.self) {
            try KeyValueBottleneck(configuration: KeyValueBottleneckConfiguration(inputSize: 6, heads: 4, keySize: 2, valueSize: 2,
                                                                                 splitter: .chunks), seed: 0)
        }
    }
}
