import Foundation
import Testing
@testable import GraftNN

/// Sizes and values read from a config.json are checked before anything is built from them.
@Suite struct ConfigurationLimits {
    func decode(_ changes: [String: Any]) throws -> EncoderConfiguration {
        var json: [String: Any] = ["model_type": "bert", "vocab_size": 100, "hidden_size": 16, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 32]
        json.merge(changes) { $1 }
        return try JSONDecoder().decode(EncoderConfiguration.self, from: JSONSerialization.data(withJSONObject: json))
    }

    @Test func aValidConfigurationDecodes() throws {
        #expect(try decode([:]).layerCount == 2)
    }

    @Test(arguments: [
        (["vocab_size": 1_000_000_000_000], "vocab_size"), (["max_position_embeddings": 1_000_000_000_000], "max_position_embeddings"),
        (["num_hidden_layers": 1_000_000_000], "num_hidden_layers"), (["hidden_size": 65_536, "num_attention_heads": 1], "hidden_size"),
        (["layer_norm_eps": -1], "layer_norm_eps"), (["hidden_dropout_prob": 2], "hidden_dropout_prob"),
        (["pad_token_id": 100], "pad_token_id"), (["type_vocab_size": 0], "type_vocab_size"),
        (["vocab_size": 16_000_000, "hidden_size": 32_768, "num_attention_heads": 1], "more than this machine's memory"),
    ] as [([String: Int], String)])
    func outOfRangeValuesAreRefused(changes: [String: Int], named: String) throws {
        let error = try #require(throws: ConfigurationError.self) { try decode(changes) }
        #expect(error.description.contains(named), "\(error)")
    }
}
