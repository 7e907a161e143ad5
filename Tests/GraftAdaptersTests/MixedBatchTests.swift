import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

/// A batch whose examples use different adapters gives each example the output
/// it gets alone under its own setup.
@Suite struct MixedBatches {
    let backbone: Backbone
    let model: GraftedModel

    init() throws {
        backbone = try TinyBackbone.make()
        let configurations: [(String, AdapterConfiguration)] = [
            ("lora", AdapterConfiguration(LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value, .ffnOut]))),
            ("inv", AdapterConfiguration(BottleneckConfiguration.seqBnInv)),
            ("lang", AdapterConfiguration(BottleneckConfiguration.seqBn)),
        ]
        var adapters: [(String, any Adapter)] = []
        for (seed, (name, configuration)) in configurations.enumerated() {
            let adapter = try configuration.makeAdapter(model: backbone.configuration, seed: UInt64(seed))
            randomize(adapter, seed: UInt64(10 + seed))
            adapters.append((name, adapter))
        }
        model = try graft(backbone, adapters)
    }

    /// Sequences of different lengths (pad id 1), so the mixed batch pads most of them.
    let sequences: [[Int]] = [[0, 5, 6, 7, 9, 2], [0, 8, 2], [0, 11, 12, 2], [0, 5, 5, 5, 5, 5, 6, 2], [0, 9, 2], [0, 7, 8, 13, 2]]

    /// The largest difference between each example's real tokens in the mixed
    /// batch (padded, or packed) and the same example run alone (no padding) under its setup.
    func largestDifference(groups: [ExampleGroup], packed: Bool = false) throws -> Float {
        let input = packed ? EncoderInput(packing: sequences) : EncoderInput(padding: sequences, padID: 1)
        let mixed = try model(input, groups: groups).value
        let width = backbone.configuration.hiddenSize
        var example = 0, largest: Float = 0
        for group in groups {
            try model.activate(group.setup)
            for _ in 0..<group.examples {
                let alone = model(EncoderInput(padding: [sequences[example]], padID: 1), context: model.context()).value.scalars
                let start = input.firstRows[example] * width
                let rows = Array(mixed.scalars[start..<(start + alone.count)])
                largest = max(largest, zip(rows, alone).map { abs($0 - $1) }.max()!)
                example += 1
            }
        }
        return largest
    }

    @Test(arguments: [false, true]) func eachExampleGetsItsOwnSetupsOutput(packed: Bool) throws {
        let stack = AdapterSetup.stack([.single("lang"), .single("inv")])
        let groups = [ExampleGroup(setup: .single("lora"), examples: 2), ExampleGroup(setup: nil, examples: 1),
                      ExampleGroup(setup: stack, examples: 2), ExampleGroup(setup: .single("inv"), examples: 1)]
        #expect(try largestDifference(groups: groups, packed: packed) <= 1e-5)
        // The adapters do act: the mixed batch is not the plain backbone's output.
        let input = EncoderInput(padding: sequences, padID: 1)
        let plain = try model(input, groups: [ExampleGroup(setup: nil, examples: sequences.count)]).value
        #expect(try model(input, groups: groups).value != plain)
    }

    /// Padded to the mixed batch's length, each group alone gives bit-identical
    /// rows: every GEMM row and every attention block belongs to one example, so
    /// only the padding (lengths of the vectorised sums) can change the rounding.
    @Test func eachGroupPaddedAloneIsBitIdentical() throws {
        let groups = [ExampleGroup(setup: .single("inv"), examples: 3), ExampleGroup(setup: .single("lora"), examples: 3)]
        let input = EncoderInput(padding: sequences, padID: 1)
        let mixed = try model(input, groups: groups).value
        let rows = 3 * input.length
        for (index, group) in groups.enumerated() {
            let part = EncoderInput(ids: Array(input.ids[(index * rows)..<((index + 1) * rows)]),
                                    attentionMask: Array(input.attentionMask[(index * rows)..<((index + 1) * rows)]),
                                    batchSize: 3, length: input.length)
            try model.activate(group.setup)
            let width = backbone.configuration.hiddenSize
            #expect(model(part, context: model.context()).value.scalars == Array(mixed.scalars[(index * rows * width)..<((index + 1) * rows * width)]))
        }
    }

    @Test func oneGroupIsTheActiveSetupsBatch() throws {
        let input = EncoderInput(padding: sequences, padID: 1)
        try model.activate(.single("lora"))
        let expected = model(input, context: model.context()).value
        try model.activate(nil)
        #expect(try model(input, groups: [ExampleGroup(setup: .single("lora"), examples: sequences.count)]).value == expected)
        #expect(model.active == nil)
    }

    @Test func groupsMustSplitTheBatchIntoDefinedSetups() throws {
        let input = EncoderInput(padding: sequences, padID: 1)
        #expect(throws: MixedBatchError.groupsDoNotCoverBatch(groupSizes: [2, 3], batchSize: 6)) {
            try model(input, groups: [ExampleGroup(setup: nil, examples: 2), ExampleGroup(setup: .single("lora"), examples: 3)])
        }
        #expect(throws: MixedBatchError.self) {
            try model(input, groups: [ExampleGroup(setup: nil, examples: 0), ExampleGroup(setup: nil, examples: 6)])
        }
        #expect(throws: CompositionError.unknownAdapter("nope", known: ["inv", "lang", "lora"])) {
            try model(input, groups: [ExampleGroup(setup: .single("nope"), examples: 6)])
        }
        #expect(throws: CompositionError.self) {
            try model(input, groups: [ExampleGroup(setup: .parallel([.single("lora"), .single("inv")]), examples: 6)])
        }
    }
}
