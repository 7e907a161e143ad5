import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

/// Parallel, Fuse and Average against their definitions (Stack is checked
/// against AdapterHub in `ReferenceParityTests`; here only its invertible blocks).
@Suite struct CompositionTests {
    /// Rows of `tensor` (`[batch * length, d]`) belonging to example `index` of a batch of `length`-token rows.
    func example(_ tensor: Tensor, _ index: Int, length: Int) -> Tensor {
        tensor.slice(alongAxis: 0, (index * length)..<((index + 1) * length))
    }

    /// Two bottleneck adapters of `configuration` for `backbone`, with random weights.
    func randomizedPair(_ configuration: BottleneckConfiguration, _ backbone: Backbone) -> (BottleneckAdapter, BottleneckAdapter) {
        let pair = (BottleneckAdapter(configuration, model: backbone.configuration, seed: 1),
                    BottleneckAdapter(configuration, model: backbone.configuration, seed: 2))
        randomize(pair.0, seed: 3)
        randomize(pair.1, seed: 4)
        return pair
    }

    @Test func parallelRunsEachAdapterOnItsOwnExamples() throws {
        let backbone = try TinyBackbone.make()
        let a = BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 1)
        let b = LoRAAdapter(LoRAConfiguration(rank: 2), model: backbone.configuration, seed: 2)
        randomize(a, seed: 3)
        randomize(b, seed: 4)
        let model = try graft(backbone, [("a", a), ("b", b)])
        try model.activate(.parallel([.single("a"), .single("b")]))
        let both = output(model)
        let length = tinyInput.length
        for (index, name) in ["a", "b"].enumerated() {
            try model.activate(.single(name))
            let alone = output(model)
            #expect(example(both, index, length: length).maxAbsDifference(example(alone, index, length: length)) < 1e-5)
        }
    }

    /// In a Stack only the first adapter's invertible block acts (as in AdapterHub, where MAD-X's language adapter
    /// comes first): a later adapter's block changes nothing, which is why `adapt train --stack-on` refuses one.
    @Test func stackActsOnlyTheFirstAdaptersInvertibleBlock() throws {
        let backbone = try TinyBackbone.make()
        let (first, second) = randomizedPair(.seqBnInv, backbone)
        let model = try graft(backbone, [("first", first), ("second", second)])
        try model.activate(.stack([.single("first"), .single("second")]))
        let before = output(model)
        randomize(try #require(second.invertible), seed: 5)
        #expect(before.maxAbsDifference(output(model)) == 0)
        randomize(try #require(first.invertible), seed: 6)
        #expect(before.maxAbsDifference(output(model)) > 1e-3)
    }

    @Test func averageOfLoRAIsTheWeightedSumOfTheirUpdates() throws {
        let backbone = try TinyBackbone.make()
        let configuration = LoRAConfiguration(rank: 2, alpha: 4)
        let a = LoRAAdapter(configuration, model: backbone.configuration, seed: 1)
        let b = LoRAAdapter(configuration, model: backbone.configuration, seed: 2)
        randomize(a, seed: 3)
        randomize(b, seed: 4)
        // Scaling B by w scales ΔW = B A by w, and stacked LoRA deltas add.
        let (scaledA, scaledB) = (LoRAAdapter(configuration, model: backbone.configuration, seed: 1),
                                  LoRAAdapter(configuration, model: backbone.configuration, seed: 2))
        for (source, target, weight) in [(a, scaledA, Float(0.3)), (b, scaledB, Float(0.7))] {
            for ((_, from), (_, to)) in zip(source.namedParameters(), target.namedParameters()) { to.value = from.value }
            for slots in target.updates.values { for update in slots.values { update.b.value = update.b.value * weight } }
        }
        let model = try graft(backbone, [("a", a), ("b", b), ("a'", scaledA), ("b'", scaledB)])
        try model.activate(.average(["a", "b"], weights: [0.3, 0.7]))
        let averaged = output(model)
        try model.activate(.stack([.single("a'"), .single("b'")]))
        #expect(averaged.maxAbsDifference(output(model)) < 1e-5)
    }

    @Test func averageOfBottlenecksAveragesTheirWeights() throws {
        let backbone = try TinyBackbone.make()
        let a = BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 1)
        let b = BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 2)
        let mixed = BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 3)
        randomize(a, seed: 4)
        randomize(b, seed: 5)
        for (((_, pa), (_, pb)), (_, pm)) in zip(zip(a.namedParameters(), b.namedParameters()), mixed.namedParameters()) {
            pm.value = pa.value * 0.25 + pb.value * 0.75
        }
        let model = try graft(backbone, [("a", a), ("b", b), ("mixed", mixed)])
        try model.activate(.average(["a", "b"], weights: [0.25, 0.75]))
        let averaged = output(model)
        try model.activate(.single("mixed"))
        #expect(averaged.maxAbsDifference(output(model)) < 1e-5)
    }

    @Test func fuseAttendsOverTheAdaptersOutputs() throws {
        let backbone = try TinyBackbone.make()
        let (a, b) = randomizedPair(.seqBn, backbone)
        let model = try graft(backbone, [("a", a), ("b", b)])
        try model.activate(.fuse(["a", "b"]))
        // With zero query and key projections the attention is uniform and the value
        // projection starts as the identity, so fusion adds the mean of the adapters' deltas.
        for (name, parameter) in model.namedParameters() where name.contains(".query.") || name.contains(".key.") {
            parameter.value = Tensor(zeros: parameter.value.shape)
        }
        var generator = SeededGenerator(seed: 9)
        let h = Variable(.normal(shape: [4, 16], generator: &generator))
        let x = Variable(.normal(shape: [4, 16], generator: &generator))
        let layerNorm = backbone.encoder.layers.elements[0].output.layerNorm
        let context = model.context()
        let fused = model.subLayer(.feedForward, layer: 0, output: h, residual: x, layerNorm: layerNorm, context: context).value
        let u = h + x
        let deltas = [a, b].map { $0.subLayerStep(.feedForward, layer: 0, residual: x, stream: u, layerNorm: layerNorm, context: context)!.value - u.value }
        let expected = layerNorm(Variable(u.value + (deltas[0] + deltas[1]) * 0.5)).value
        #expect(fused.maxAbsDifference(expected) < 1e-5)
        // The fusion parameters are trainable and get gradients.
        let tape = Tape()
        let trained = model.context(tape: tape)
        let loss = model(tinyInput, context: trained).sum()
        tape.backward(loss)
        #expect(model.namedParameters().filter { $0.name.hasPrefix("fusion.") }.allSatisfy { $0.parameter.grad != nil })
    }

    @Test func undefinedCompositionsAreNamed() throws {
        let backbone = try TinyBackbone.make()
        let model = try graft(backbone, [
            ("inv", BottleneckAdapter(.seqBnInv, model: backbone.configuration, seed: 1)),
            ("plain", BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 2)),
            ("lora", LoRAAdapter(LoRAConfiguration(), model: backbone.configuration, seed: 3)),
        ])
        #expect(throws: CompositionError.self) { try model.activate(.fuse(["inv", "plain"])) }
        #expect(throws: CompositionError.self) { try model.activate(.average(["plain", "lora"], weights: [0.5, 0.5])) }
        #expect(throws: CompositionError.unknownAdapter("missing", known: ["inv", "lora", "plain"])) {
            try model.activate(.stack([.single("plain"), .single("missing")]))
        }
        #expect(throws: CompositionError.duplicateName("lora")) {
            try model.add("lora", LoRAAdapter(LoRAConfiguration(), model: backbone.configuration, seed: 4))
        }
        // A model without adapters says so, instead of an empty list.
        let bare = GraftedModel(encoder: backbone.encoder)
        let error = try #require(throws: CompositionError.self) { try bare.activate(.single("task")) }
        #expect(error.description == "no adapter named \"task\"; the model has no adapters")
    }
}
