import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

@Suite struct UniPTTests {
    let backbone: Backbone
    let side: UniPT

    init() throws {
        backbone = try TinyBackbone.make()
        side = try UniPT(for: backbone.configuration, seed: 3)
        randomize(side, seed: 5)
    }

    @Test func shapesAndParameterNames() throws {
        let c = backbone.configuration
        let (d, w) = (c.hiddenSize, c.hiddenSize / 2)
        let output = side(backbone.encoder, input: tinyInput, context: .inference())
        #expect(output.shape == [tinyInput.batchSize * tinyInput.length, d])
        let names = side.namedParameters().map(\.name)
        #expect(names.contains("project.\(c.layerCount).dense.weight") && names.contains("gate.weight") && !names.contains("gate.bias"))
        #expect(names.contains("proj.norm.bias") && names.contains("up.weight"))
        let projection = d * w + w + 2 * w
        #expect(side.namedParameters().reduce(0) { $0 + $1.parameter.value.count } == (c.layerCount + 1) * projection + w + (w * w + w + 2 * w) + (w * d + d))
        #expect(throws: ConfigurationError.self) { try UniPT(for: c, configuration: UniPTConfiguration(reductionFactor: 0), seed: 0) }
    }

    /// A sequence's outputs at its real tokens do not depend on the padding added for a longer neighbour.
    @Test func paddingIsMasked() {
        let alone = EncoderInput(padding: [[0, 8, 11, 2]], padID: 1)
        let expected = side(backbone.encoder, input: alone, context: .inference()).value
        let batched = side(backbone.encoder, input: tinyInput, context: .inference()).value  // the same sequence second, padded to 6
        let rows = batched.slice(alongAxis: 0, tinyInput.length..<(tinyInput.length + 4))
        #expect(rows.maxAbsDifference(expected) < 1e-4)
    }

    /// Finite differences of every side-network parameter. Positive LayerNorm shifts keep the
    /// projected states and the fused stream positive, away from the ReLU kinks that finite differences step over.
    @Test func gradientsMatchFiniteDifferences() {
        for (name, parameter) in side.namedParameters() where name.hasSuffix("norm.bias") { parameter.value = parameter.value + 1 }
        side.gate.weight.value = side.gate.weight.value * 0.1
        let states = UniPT.hiddenStates(of: backbone.encoder, input: tinyInput)
        let parameters = side.namedParameters()
        let errors = parameterGradientErrors(parameters.map(\.parameter), epsilon: 1e-2) { tape in
            side(states, input: tinyInput, context: ForwardContext(tape: tape, isTraining: false, seed: 0))
        }
        for (named, error) in zip(parameters, errors) { #expect(error < 1e-2, "\(named.name): relative error \(error)") }
    }

    /// The backbone records nothing on the tape and receives no gradient.
    @Test func backboneIsNotOnTheTape() {
        let states = UniPT.hiddenStates(of: backbone.encoder, input: tinyInput)
        let sideOnly = Tape()
        _ = side(states, input: tinyInput, context: ForwardContext(tape: sideOnly, isTraining: false, seed: 0))
        let tape = Tape()
        let output = side(backbone.encoder, input: tinyInput, context: ForwardContext(tape: tape, isTraining: false, seed: 0))
        #expect(tape.count == sideOnly.count)
        tape.backward(output.sum())
        #expect(backbone.encoder.namedParameters().allSatisfy { $0.parameter.grad == nil })
        #expect(side.namedParameters().allSatisfy { $0.parameter.grad != nil })
    }

    /// A side network is saved and loaded as an adapter checkpoint like any other method.
    @Test func checkpointRoundTripKeepsTheOutput() throws {
        let head = HeadConfiguration.sequenceClassification(labels: ["a", "b", "c"], pooling: .first)
        let headModule = head.makeHead(backbone: backbone, seed: 1)
        randomize(headModule, seed: 2)
        let path = TinyBackbone.temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try AdapterCheckpoint(name: "task", adapter: side, configuration: AdapterConfiguration(side.configuration), head: headModule,
                              headConfiguration: head, backbone: backbone).save(to: path)
        let loaded = try AdapterCheckpoint.load(from: path, backbone: backbone)
        let loadedSide = try #require(loaded.adapter as? UniPT)
        #expect(loaded.headConfiguration == head && loaded.configuration == AdapterConfiguration(side.configuration))
        #expect(loadedSide(backbone.encoder, input: tinyInput, context: .inference()).value == side(backbone.encoder, input: tinyInput, context: .inference()).value)
        let values = { (module: any Module) in module.namedParameters().map(\.parameter.value) }
        #expect(values(loaded.head!) == values(headModule))

        let other = try TinyBackbone.make(seed: 9)
        #expect(throws: AdapterCheckpointError.self) { try AdapterCheckpoint.load(from: path, backbone: other) }
        let wrongSize = try UniPT(hiddenSize: 16, stateCount: 5, seed: 0)
        #expect(throws: AdapterCheckpointError.self) {
            try AdapterCheckpoint(name: "task", adapter: wrongSize, configuration: AdapterConfiguration(wrongSize.configuration), backbone: backbone)
        }
    }

    /// Grafted like any adapter, the side network's output is the model's; it composes with nothing else.
    @Test func graftedSideNetworkReplacesTheEncoderOutput() throws {
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("side", side)
        try model.add("bottleneck", AdapterConfiguration(method: "seq_bn").makeAdapter(model: backbone.configuration, seed: 0))
        try model.activate(.single("side"))
        #expect(model(tinyInput, context: model.context()).value == side(backbone.encoder, input: tinyInput, context: .inference()).value)
        #expect(throws: CompositionError.self) { try model.activate(.stack([.single("bottleneck"), .single("side")])) }
        #expect(throws: CompositionError.self) { try model.merge("side") }
    }
}
