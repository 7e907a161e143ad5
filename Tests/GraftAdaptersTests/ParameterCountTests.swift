import Foundation
import GraftNN
import Testing
@testable import GraftAdapters

@Suite struct ParameterCounts {
    /// `bert-base-multilingual-cased`'s config.json.
    let mbert: EncoderConfiguration

    init() throws {
        mbert = try JSONDecoder().decode(EncoderConfiguration.self,
                                         from: Data(contentsOf: URL(fileURLWithPath: fixture("mbert_config.json"))))
    }

    /// The counts the papers give for the mBERT-base shape.
    @Test func mbertMatchesTheReference() throws {
        #expect(try AdapterConfiguration(method: "seq_bn").parameterCount(model: mbert) == 894_528)
        #expect(try AdapterConfiguration(method: "seq_bn_inv").parameterCount(model: mbert) == 1_190_592)
        #expect(AdapterConfiguration(LoRAConfiguration(rank: 8, targets: [.query, .value])).parameterCount(model: mbert) == 294_912)
        // 177.9M with BERT's pooler, as transformers counts bert-base-multilingual-cased.
        #expect(mbert.parameterCount() == 177_262_848)
        #expect(mbert.parameterCount(withPooler: true) == 177_853_440)
    }

    static let variants: [AdapterConfiguration] = AdapterMethods.all.map(AdapterConfiguration.init) + [
        AdapterConfiguration(BottleneckConfiguration(placement: .double, reductionFactor: 4, reductionFactorPerLayer: ["1": 2],
                                            leaveOut: [0], activation: .relu, invertible: true, invertibleReductionFactor: 4)),
        AdapterConfiguration(LoRAConfiguration(rank: 3, targets: [.key, .ffnOut, .key], leaveOut: [1])),
        AdapterConfiguration(MoSConfiguration(rank: 5, validRank: 3, shards: 4, privateRank: 2, targets: LinearSlot.allCases, leaveOut: [2])),
    ]

    /// Counting without allocating agrees with the allocated adapter.
    @Test(arguments: variants)
    func countMatchesTheAllocatedAdapter(configuration: AdapterConfiguration) throws {
        let model = EncoderConfiguration(vocabularySize: 30, hiddenSize: 32, layerCount: 3, headCount: 4, intermediateSize: 48)
        #expect(configuration.parameterCount(model: model) == (try configuration.makeAdapter(model: model, seed: 0)).parameterCount)
    }

    @Test(arguments: [false, true])
    func encoderCountMatchesTheAllocatedEncoder(pooler: Bool) {
        let model = EncoderConfiguration(vocabularySize: 30, hiddenSize: 32, layerCount: 3, headCount: 4, intermediateSize: 48,
                                         maxPositions: 20, typeVocabularySize: 3)
        let encoder = TransformerEncoder(configuration: model, withPooler: pooler)
        #expect(model.parameterCount(withPooler: pooler) == encoder.namedParameters().reduce(0) { $0 + $1.parameter.value.count })
    }
}
