import GraftAutodiff
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

/// Finite-difference checks of every adapter parameter's gradient, through the
/// whole (frozen) tiny encoder.
@Suite struct AdapterGradients {
    /// Differences step over ReLU's kink unless `epsilon` is small; smooth adapters take a larger one (less rounding noise).
    func check(_ adapter: any Adapter, epsilon: Float = 1e-2) throws {
        let backbone = try TinyBackbone.make()
        randomize(adapter, seed: 11)
        let model = try graft(backbone, [("a", adapter)])
        try model.activate(.single("a"))
        let parameters = adapter.namedParameters()
        let errors = parameterGradientErrors(parameters.map(\.parameter), epsilon: epsilon) { tape in
            model(tinyInput, context: model.context(tape: tape))
        }
        for (named, error) in zip(parameters, errors) {
            #expect(error < 1e-2, "\(adapter.method) \(named.name): relative error \(error)")
        }
    }

    /// Activation checkpointing through adapters, including MoS's pools shared by every layer.
    @Test(arguments: ["lora", "seq_bn_inv", "par_bn", "mos"])
    func recomputedLayersGiveTheSameGradients(method: String) throws {
        let backbone = try TinyBackbone.make()
        let adapter = try AdapterConfiguration(method: method).makeAdapter(model: backbone.configuration, seed: 0)
        randomize(adapter, seed: 11)
        let model = try graft(backbone, [("a", adapter)])
        try model.activate(.single("a"))
        let parameters = adapter.namedParameters().map(\.parameter)
        func run(recomputing: Bool) -> (loss: Float, gradients: [Tensor?]) {
            let tape = Tape()
            let context = model.context(tape: tape, isTraining: true, seed: 3)
            context.recomputesLayers = recomputing
            let hidden = model(tinyInput, context: context)
            let loss = (hidden * hidden).mean()
            tape.backward(loss)
            defer { for parameter in parameters { parameter.zeroGradient() } }
            return (loss.value.scalar, parameters.map(\.grad))
        }
        let plain = run(recomputing: false), recomputed = run(recomputing: true)
        #expect(plain.loss == recomputed.loss)
        for (a, b) in zip(plain.gradients, recomputed.gradients) {
            let a = try #require(a), b = try #require(b)
            #expect(a.maxAbsDifference(b) < 1e-6, "\(method)")
        }
    }

    @Test func lora() throws {
        try check(LoRAAdapter(LoRAConfiguration(rank: 2, alpha: 6, targets: LinearSlot.allCases),
                              model: TinyBackbone.make().configuration, seed: 0))
    }

    @Test(arguments: [BottleneckConfiguration.seqBnInv, .doubleSeqBn, .parBn])
    func bottleneck(configuration: BottleneckConfiguration) throws {
        try check(BottleneckAdapter(configuration, model: TinyBackbone.make().configuration, seed: 0),
                  epsilon: configuration.activation == .relu ? 1e-3 : 1e-2)
    }

    /// The gradient of the shared pools flows through the gathers of every layer.
    @Test func mosThroughTheGathers() throws {
        try check(MoSAdapter(MoSConfiguration(rank: 3, validRank: 2, shards: 2, privateRank: 1, alpha: 6, targets: [.value, .ffnOut]),
                             model: TinyBackbone.make().configuration, seed: 0))
    }
}
