import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import Testing
@testable import GraftAdapters

/// The tiny BERT and adapter weights of `Fixtures/make_adapter_references.py`
/// (AdapterHub `adapters` and `peft`).
struct References {
    let file: HDF5File
    let configuration: EncoderConfiguration
    let input: EncoderInput

    init() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/adapter_references", withExtension: "h5"))
        file = try HDF5File(path: url.path, mode: .read)
        configuration = try JSONDecoder().decode(EncoderConfiguration.self, from: Data(try file.attribute(named: "config").utf8))
        let ids = try file.read("input.ids"), mask = try file.read("input.attention_mask")
        input = EncoderInput(ids: ids.scalars.map { Int($0) }, attentionMask: mask.scalars.map { Int($0) },
                             batchSize: ids.shape[0], length: ids.shape[1])
    }

    func model() throws -> GraftedModel {
        let encoder = TransformerEncoder(configuration: configuration)
        try encoder.loadParameters { try file.read($0) }
        return GraftedModel(encoder: encoder)
    }

    /// Loads the reference weights of `adapter` in `case` into `module`.
    func load(_ module: any Adapter, case name: String, adapter: String) throws {
        try module.loadParameters { try file.read("case/\(name)/adapters/\(adapter)/\($0)") }
    }

    /// Max |difference| of the model's output to the case's expected output, over real tokens.
    func difference(_ model: GraftedModel, case name: String) throws -> Float {
        let output = model(input, context: model.context()).value
        let expected = try file.read("case/\(name)/expected").reshaped(output.shape)
        var worst: Float = 0
        for row in 0..<output.shape[0] where input.attentionMask[row] == 1 {
            for j in 0..<output.shape[1] { worst = max(worst, abs(output[row, j] - expected[row, j])) }
        }
        return worst
    }
}

@Suite struct ReferenceParity {
    @Test(arguments: [
        ("seq_bn", BottleneckConfiguration.seqBn), ("double_seq_bn", .doubleSeqBn),
        ("par_bn", .parBn), ("seq_bn_inv", .seqBnInv),
    ])
    func bottleneckMatchesAdapterHub(name: String, configuration: BottleneckConfiguration) throws {
        let references = try References()
        let model = try references.model()
        let adapter = BottleneckAdapter(configuration, model: references.configuration, seed: 0)
        try references.load(adapter, case: name, adapter: "a")
        try model.add("a", adapter)
        try model.activate(.single("a"))
        #expect(try references.difference(model, case: name) < 1e-5)
    }

    @Test func stackMatchesAdapterHub() throws {
        let references = try References()
        let model = try references.model()
        let language = BottleneckAdapter(.seqBn, model: references.configuration, seed: 0)
        let task = BottleneckAdapter(.doubleSeqBn, model: references.configuration, seed: 1)
        try references.load(language, case: "stack_seq_bn_double_seq_bn", adapter: "lang")
        try references.load(task, case: "stack_seq_bn_double_seq_bn", adapter: "task")
        try model.add("lang", language)
        try model.add("task", task)
        try model.activate(.stack([.single("lang"), .single("task")]))
        #expect(try references.difference(model, case: "stack_seq_bn_double_seq_bn") < 1e-5)
    }

    @Test func loraMatchesPeft() throws {
        let references = try References()
        let model = try references.model()
        let lora = LoRAAdapter(LoRAConfiguration(rank: 4, alpha: 8), model: references.configuration, seed: 0)
        try references.load(lora, case: "lora_r4_alpha8", adapter: "default")
        try model.add("lora", lora)
        try model.activate(.single("lora"))
        #expect(try references.difference(model, case: "lora_r4_alpha8") < 1e-5)
    }
}
