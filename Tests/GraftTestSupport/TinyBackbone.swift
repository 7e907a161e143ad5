import Foundation
import GraftIO
import GraftNN
import GraftTensor
import GraftText

/// Small models built in code, for tests that need a backbone but not real weights.
public enum TinyBackbone {
    /// A toy unigram vocabulary: the XLM-R special pieces, a few words and letters, `<mask>` last.
    public static func tokenizer() throws -> UnigramTokenizer {
        let words = ["▁mawu", "▁a", "▁ndi", "▁water", "▁", "a", "b", "i", "m", "n", "u", "w", "d"]
        let pieces = ["<s>", "<pad>", "</s>", "<unk>"] + words + ["<mask>"]
        let scores = pieces.enumerated().map { index, piece in piece.hasPrefix("<") ? 0 : -Float(index) / 4 }
        return try UnigramTokenizer(pieces: pieces, scores: scores, normalization: ["\t": [" "]],
                                    bos: 0, eos: 2, pad: 1, unk: 3)
    }

    /// An XLM-R-style encoder (2 layers, hidden 16) with seeded random weights, for `tokenizer`
    /// (by default the toy one).
    public static func make(seed: UInt64 = 0, tokenizer: (any Tokenizer)? = nil) throws -> Backbone {
        let tokenizer = try tokenizer ?? Self.tokenizer()
        let configuration = EncoderConfiguration(
            modelType: "xlm-roberta", vocabularySize: tokenizer.vocabularySize + 3, hiddenSize: 16, layerCount: 2,
            headCount: 2, intermediateSize: 32, maxPositions: 34, typeVocabularySize: 1, layerNormEpsilon: 1e-5,
            padTokenID: 1)
        let encoder = TransformerEncoder(configuration: configuration)
        var generator = SeededGenerator(seed: seed)
        try encoder.loadParameters { name in
            let shape = encoder.namedParameters().first { $0.name == name }!.parameter.value.shape
            let base: Float = name.hasSuffix("LayerNorm.weight") ? 1 : 0
            return Tensor.normal(shape: shape, standardDeviation: 0.3, generator: &generator) + base
        }
        return try Backbone(name: "tiny-xlmr", encoder: encoder, tokenizer: tokenizer)
    }

    /// A path for a temporary file that the caller removes.
    public static func temporaryPath(_ suffix: String = ".h5") -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("graft-\(UUID().uuidString)\(suffix)").path
    }
}

/// A path inside Graft's cache (`$GRAFT_CACHE`, or `~/.cache/graft`), where
/// `Scripts/fetch-models.sh` puts the models the tests compare against.
public func cachePath(_ relative: String) -> String {
    (ProcessInfo.processInfo.environment["GRAFT_CACHE"] ?? NSHomeDirectory() + "/.cache/graft") + "/" + relative
}
