import GraftAutodiff
import GraftNN
import GraftTensor
import GraftTestSupport
import Testing
@testable import GraftAdapters

@Suite struct MoS {
    let model = EncoderConfiguration(vocabularySize: 20, hiddenSize: 16, layerCount: 3, headCount: 2, intermediateSize: 32)
    let configuration = MoSConfiguration(rank: 4, validRank: 2, shards: 2, privateRank: 1, alpha: 12, targets: [.query, .ffnIn, .ffnOut])

    @Test func deShardedLoRAComputesTheSame() throws {
        let backbone = try TinyBackbone.make()
        let mos = try MoSAdapter(configuration, model: backbone.configuration, seed: 1)
        randomize(mos, seed: 2)
        let lora = mos.asLoRA()
        #expect(lora.configuration.rank == 4 && lora.configuration.scaling == mos.configuration.scaling)
        let grafted = try graft(backbone, [("mos", mos), ("lora", lora)])
        try grafted.activate(.single("mos"))
        let sharded = output(grafted)
        try grafted.activate(.single("lora"))
        #expect(output(grafted).maxAbsDifference(sharded) < 1e-5)
        #expect(sharded.maxAbsDifference(backbone.encoder(tinyInput, context: .inference()).value) > 0.1)
        // MoS merges like LoRA.
        let merged = try grafted.mergedEncoderCopy(["mos"])
        #expect(merged(tinyInput, context: .inference()).value.maxAbsDifference(sharded) < 1e-4)
    }

    @Test func trainableParametersEqualLoRAAtTheValidRank() throws {
        let mos = try MoSAdapter(configuration, model: model, seed: 0)
        let lora = LoRAAdapter(LoRAConfiguration(rank: 2, targets: configuration.targets), model: model, seed: 0)
        #expect(mos.parameterCount == lora.parameterCount)
        #expect(mos.parameterCount == configuration.parameterCount(model: model))
        // P = r_valid * L * l shard rows of width in / l and out / l.
        #expect(mos.pools[.ffnIn]!.a.value.shape == [12, 8] && mos.pools[.ffnIn]!.b.value.shape == [12, 16])
        #expect(mos.pools[.query]!.b.value == Tensor(zeros: [12, 8]))
    }

    @Test func indicesFollowSubsetSelectionPrivatisationAndPairDissociation() throws {
        let mos = try MoSAdapter(configuration, model: model, seed: 0)
        let (rows, privateRows) = (configuration.poolRows(model), 3 * 1 * 2)
        for slot in configuration.targets {
            var publicA: [[Int]] = []
            for layer in 0..<3 {
                let index = try #require(mos.indices[layer]?[slot])
                for vector in [index.a, index.b] {
                    #expect(vector.count == 4 * 2)
                    // The layer's own private block first, then distinct public shards.
                    #expect(Array(vector.prefix(2)) == [2 * layer, 2 * layer + 1])
                    #expect(vector.dropFirst(2).allSatisfy { (privateRows..<rows).contains($0) })
                    #expect(Set(vector.dropFirst(2)).count == 6)
                }
                #expect(index.a != index.b)
                publicA.append(Array(index.a.dropFirst(2)))
            }
            #expect(Set(publicA).count == 3)
        }
    }

    @Test func indicesDependOnlyOnTheIndexSeed() throws {
        let first = try MoSAdapter(configuration, model: model, seed: 0)
        let otherPools = try MoSAdapter(configuration, model: model, seed: 5)
        var reseeded = configuration
        reseeded.indexSeed = 1
        let otherIndices = try MoSAdapter(reseeded, model: model, seed: 0)
        #expect(first.indices == otherPools.indices)
        #expect(first.pools[.query]!.a.value != otherPools.pools[.query]!.a.value)
        #expect(first.indices != otherIndices.indices)
    }

    /// Row `i` of a layer's `A` is gathered shards `i, i + r, ..., i + (l - 1) r`, concatenated.
    @Test func vectorsConcatenateInterleavedShards() throws {
        let mos = try MoSAdapter(configuration, model: model, seed: 0)
        let pool = mos.pools[.query]!
        pool.a.value = Tensor(shape: pool.a.value.shape) { Float($0) }  // row p holds 8p ..< 8p + 8
        let a = mos.asLoRA().updates[1]![.query]!.a.value
        let index = mos.indices[1]![.query]!.a
        for i in 0..<4 {
            let expected = [index[i], index[i + 4]].flatMap { row in (0..<8).map { Float(8 * row + $0) } }
            #expect(Array(a.scalars[(16 * i)..<(16 * i + 16)]) == expected)
        }
    }

    @Test func unfitSettingsAreErrors() {
        var noPublicShards = configuration
        noPublicShards.privateRank = 2
        #expect(throws: ConfigurationError.self) { try MoSAdapter(noPublicShards, model: model, seed: 0) }
        var uneven = configuration
        uneven.shards = 3
        #expect(throws: ConfigurationError.self) { try MoSAdapter(uneven, model: model, seed: 0) }
        var tooPrivate = configuration
        tooPrivate.privateRank = 3
        #expect(throws: ConfigurationError.self) { try AdapterConfiguration(tooPrivate).makeAdapter(model: model, seed: 0) }
    }
}
