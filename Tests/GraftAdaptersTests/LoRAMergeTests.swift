import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

@Suite struct LoRAMerge {
    /// A LoRA on every slot with alpha / r = 6, so a wrongly scaled merge shows.
    func lora(_ backbone: Backbone, rankStabilized: Bool = false) -> LoRAAdapter {
        let adapter = LoRAAdapter(LoRAConfiguration(rank: 4, alpha: 24, targets: LinearSlot.allCases, rankStabilized: rankStabilized),
                                  model: backbone.configuration, seed: 3)
        randomize(adapter, seed: 4)
        return adapter
    }

    @Test func mergedOutputEqualsUnmergedAndUnmergeRestoresTheWeights() throws {
        let backbone = try TinyBackbone.make()
        let original = backbone.encoder.namedParameters().map(\.parameter.value)
        let model = try graft(backbone, [("a", lora(backbone))])
        try model.activate(.single("a"))
        let unmerged = output(model)
        #expect(unmerged.maxAbsDifference(backbone.encoder(tinyInput, context: .inference()).value) > 0.1)

        try model.merge("a")
        #expect(model.merged == ["a"] && model.active == nil)
        #expect(output(model).maxAbsDifference(unmerged) < 1e-4)
        #expect(throws: CompositionError.merged("a")) { try model.activate(.single("a")) }
        #expect(throws: CompositionError.merged("a")) { try model.merge("a") }

        try model.unmerge("a")
        for (restored, value) in zip(backbone.encoder.namedParameters().map(\.parameter.value), original) {
            #expect(restored.maxAbsDifference(value) < 1e-5)
        }
        #expect(throws: CompositionError.notMerged("a")) { try model.unmerge("a") }
        try model.activate(.single("a"))
        #expect(output(model).maxAbsDifference(unmerged) < 1e-4)
    }

    @Test func mergedCopyLeavesTheOriginalUntouched() throws {
        let backbone = try TinyBackbone.make()
        let original = backbone.encoder.namedParameters().map(\.parameter.value)
        let model = try graft(backbone, [("a", lora(backbone))])
        try model.activate(.single("a"))
        let adapted = output(model)
        let copy = try model.mergedEncoderCopy(["a"])
        #expect(copy.namedParameters().allSatisfy { !$0.parameter.isTrainable })
        #expect(backbone.encoder.namedParameters().map(\.parameter.value) == original)
        #expect(copy(tinyInput, context: .inference()).value.maxAbsDifference(adapted) < 1e-4)
        #expect(output(model) == adapted)
    }

    @Test func removingAMergedAdapterUnmergesIt() throws {
        let backbone = try TinyBackbone.make()
        let before = backbone.encoder(tinyInput, context: .inference()).value
        let model = try graft(backbone, [("a", lora(backbone))])
        try model.merge("a")
        model.remove("a")
        #expect(model.merged.isEmpty)
        #expect(backbone.encoder(tinyInput, context: .inference()).value.maxAbsDifference(before) < 1e-5)
    }

    @Test func bottleneckAdaptersCannotBeMerged() throws {
        let backbone = try TinyBackbone.make()
        let model = try graft(backbone, [("b", BottleneckAdapter(.seqBn, model: backbone.configuration, seed: 0))])
        #expect(throws: CompositionError.notMergeable("b", method: "seq_bn")) { try model.merge("b") }
        #expect(throws: CompositionError.notMergeable("b", method: "seq_bn")) { _ = try model.mergedEncoderCopy(["b"]) }
    }

    @Test func rankStabilizedScalingIsAlphaOverSquareRootOfRank() throws {
        let backbone = try TinyBackbone.make()
        let stabilized = lora(backbone, rankStabilized: true)
        #expect(stabilized.configuration.scaling == 12)  // 24 / sqrt(4)
        // The same factors with alpha / r = 12 must compute the same.
        let plain = LoRAAdapter(LoRAConfiguration(rank: 4, alpha: 48, targets: LinearSlot.allCases), updates: stabilized.updates)
        let model = try graft(backbone, [("rs", stabilized), ("plain", plain)])
        try model.activate(.single("rs"))
        let adapted = output(model)
        try model.activate(.single("plain"))
        #expect(output(model).maxAbsDifference(adapted) < 1e-5)
        try model.merge("rs")
        #expect(output(GraftedModel(encoder: backbone.encoder)).maxAbsDifference(adapted) < 1e-4)
    }

    @Test func dropoutActsOnlyInTraining() throws {
        let backbone = try TinyBackbone.make()
        var configuration = LoRAConfiguration(rank: 4, alpha: 8)
        configuration.dropout = 0.5
        let dropped = LoRAAdapter(configuration, model: backbone.configuration, seed: 0)
        randomize(dropped, seed: 1)
        configuration.dropout = 0
        let plain = LoRAAdapter(configuration, updates: dropped.updates)
        var generator = SeededGenerator(seed: 2)
        let x = Variable(.normal(shape: [5, 16], generator: &generator))
        func delta(_ adapter: LoRAAdapter, training: Bool) -> Tensor {
            adapter.linearDelta(.query, layer: 0, input: x, context: ForwardContext(tape: nil, isTraining: training, seed: 9))!.value
        }
        #expect(delta(dropped, training: false) == delta(plain, training: false))
        #expect(delta(plain, training: true) == delta(plain, training: false))
        #expect(delta(dropped, training: true).maxAbsDifference(delta(plain, training: false)) > 1e-3)
    }
}
