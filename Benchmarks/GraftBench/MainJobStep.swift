// `graft-bench main-job`: the training steps of the main job (Scripts/quickstart.sh,
// Benchmarks/chichewa) on a randomly initialised multilingual-e5-small: batches of 16
// Chichewa Bible verses, their lengths drawn as the data has them and bucketed as
// training buckets them (`lengthBucketedBatches`), through the library's own task code:
//   --task classify  `Classifier` (mean pooling, 8 classes) with a `seq_bn` task adapter, as `adapt train`
//   --task mlm       `MaskedLanguageModel` with a `seq_bn_inv` language adapter, the corpus output
//                    vocabulary and 2,048 sampled negatives, as `adapt mlm`
// Each step: loss, backward, AdamW. After each timed step, untimed, one 1024³ sgemm measures the
// peak under the same conditions (on a machine shared with other work both drop together).
// Prints one JSON line with the batch lengths it used, so that the PyTorch peer
// (Benchmarks/suite/torch_main_job.py) can run the same batches.
import Foundation
import Graft

/// The number of Chichewa Bible training verses of each length in tokens (index = length, 0...64),
/// tokenised by multilingual-e5-small's tokenizer and cut at 64 as the main job does (`adapt data
/// tokenize chichewa-bible --max-length 64`: 16,324 verses, mean 44.7 tokens).
let chichewaVerseLengths = [
    0, 0, 0, 0, 0, 2, 0, 0, 1, 3, 3, 9, 14, 31, 32, 72, 85, 76, 69, 112, 107, 142, 203, 201, 247, 287, 288, 304,
    302, 335, 360, 327, 333, 353, 352, 329, 338, 338, 358, 353, 338, 379, 345, 339, 348, 347, 337, 359, 302, 322,
    326, 272, 299, 298, 281, 270, 267, 264, 252, 233, 216, 224, 234, 207, 2899,
]

/// The distinct token ids of the Chichewa Bible's training verses (the corpus output vocabulary
/// `adapt mlm` trains over, special tokens included).
let chichewaCorpusVocabulary = 5610

struct MainJobOptions {
    var task = "classify", threads = 1, steps = 12, warmup = 2, batch = 16
    var peakGFlops: Double?

    static let usage = "usage: graft-bench main-job [--task classify|mlm] [--threads N] [--steps N] [--warmup N] [--batch B] [--peak-gflops G]"

    init(_ arguments: ArraySlice<String>) throws {
        var rest = arguments
        while let argument = rest.popFirst() {
            guard let text = rest.popFirst() else { throw UsageError(Self.usage) }
            switch argument {
            case "--task": task = text
            case "--threads", "--steps", "--warmup", "--batch":
                guard let n = Int(text), n > 0 || (argument == "--warmup" && n == 0) else { throw UsageError("\(argument): \(text)") }
                switch argument {
                case "--threads": threads = n
                case "--steps": steps = n
                case "--warmup": warmup = n
                default: batch = n
                }
            case "--peak-gflops": peakGFlops = Double(text)
            default: throw UsageError(Self.usage)
            }
        }
        guard ["classify", "mlm"].contains(task) else { throw UsageError(Self.usage) }
    }
}

/// A tokenizer that only names multilingual-e5-small's special ids (the benchmark's texts are ids already).
struct XLMRSpecialIDs: Tokenizer {
    let vocabularySize = 250_002
    let padID = 1, unknownID = 3, maskID = 250_001
    let specialIDs: Set<Int> = [0, 1, 2, 3]
    func encode(_ text: String, maxLength: Int?) -> [Int] { preconditionFailure("XLMRSpecialIDs encodes no text") }
}

/// multilingual-e5-small's shape with random weights (N(0, 0.02), LayerNorm 1 and 0).
func randomE5Small(generator: inout SeededGenerator) throws -> Backbone {
    let configuration = EncoderConfiguration(modelType: "xlm-roberta", vocabularySize: 250_002, hiddenSize: 384, layerCount: 12,
                                             headCount: 12, intermediateSize: 1536, maxPositions: 514, padTokenID: 1)
    let encoder = TransformerEncoder(configuration: configuration)
    for (name, parameter) in encoder.namedParameters() {
        parameter.value = name.hasSuffix("LayerNorm.weight") ? Tensor(repeating: 1, shape: parameter.value.shape)
            : name.hasSuffix("bias") ? Tensor(zeros: parameter.value.shape)
            : Tensor.normal(shape: parameter.value.shape, standardDeviation: 0.02, generator: &generator)
    }
    return try Backbone(name: "random-e5-small", encoder: encoder, tokenizer: XLMRSpecialIDs(), checksum: "random")
}

func runMainJob(_ options: MainJobOptions) throws {
    BLAS.setThreadCount(options.threads)
    var generator = SeededGenerator(seed: 0)
    let backbone = try randomE5Small(generator: &generator)
    // Verses: `<s>`, ids of the corpus vocabulary, `</s>`; lengths as the Bible's, bucketed as in training.
    let corpusIDs = (0..<chichewaCorpusVocabulary - 5).map { 5 + $0 * 44 }
    let lengths = chichewaVerseLengths.enumerated().flatMap { [Int](repeating: $0.offset, count: $0.element) }
    let batches = lengthBucketedBatches(lengths: lengths, batchSize: options.batch, seed: 0).prefix(options.warmup + options.steps)
        .map { batch in batch.map { [0] + (2..<lengths[$0]).map { _ in corpusIDs[Int(generator.next() % UInt64(corpusIDs.count))] } + [2] } }

    let model = GraftedModel(encoder: backbone.encoder)
    let method = options.task == "classify" ? "seq_bn" : "seq_bn_inv"
    try model.add("a", AdapterConfiguration(method: method).makeAdapter(model: backbone.configuration, seed: 1))
    try model.activate(.single("a"))
    let loss: ([[Int]], UInt64, Tape) -> Variable
    let trainable: [Parameter]
    if options.task == "classify" {
        let classifier = Classifier(backbone: backbone, model: model, kind: .sequence, labels: (0..<8).map(String.init), seed: 2)
        trainable = (model.namedParameters() + classifier.head.namedParameters()).map(\.parameter)
        loss = { texts, seed, tape in
            classifier.loss(texts.enumerated().map { SequenceExample(ids: $0.element, label: $0.offset % 8) }, seed: seed, tape: tape).loss
        }
    } else {
        let head = MaskedLMHead(tiedTo: backbone.encoder, generator: &generator)
        let task = MaskedLanguageModel(backbone: backbone, model: model, head: head)
        task.trainingVocabulary = OutputVocabulary(covering: [corpusIDs], tokenizer: backbone.tokenizer, fullSize: 250_002)
        task.negativeSamples = 2048
        trainable = (model.namedParameters() + head.namedParameters()).map(\.parameter)
        loss = { texts, seed, tape in task.loss(texts, seed: seed, tape: tape).loss }
    }
    let optimizer = AdamW(parameters: trainable, learningRate: 1e-3, weightDecay: 0.01)
    func step(_ index: Int) -> (loss: Float, seconds: Double) {
        let start = ContinuousClock.now
        let tape = Tape()
        let value = loss(batches[index], UInt64(index + 1), tape)
        tape.backward(value)
        optimizer.step()
        for parameter in trainable { parameter.zeroGradient() }
        let elapsed = ContinuousClock.now - start
        return (value.value.scalar, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
    var losses = (0..<options.warmup).map { step($0).loss }
    let n = 1024
    let (a, b) = (Tensor.normal(shape: [n, n], generator: &generator), Tensor.normal(shape: [n, n], generator: &generator))
    var seconds = 0.0, executed = 0, peakSeconds = 0.0
    for index in options.warmup..<batches.count {
        let (counter, result) = GEMMCounter.measure { step(index) }
        losses.append(result.loss)
        seconds += result.seconds
        executed += counter.flops
        let elapsed = ContinuousClock().measure { _ = Tensor.matmul(a, b) }
        peakSeconds += Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }
    let interleavedPeak = 2 * Double(n * n * n) * Double(options.steps) / peakSeconds / 1e9
    // Useful work: the encoder's matmuls and attention products on the padded batch, forward and
    // input backward (2x); the adapter's and head's own matmuls are not counted (a few %).
    let timed = batches[options.warmup...]
    let tokens = timed.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
    let c = backbone.configuration
    let flops = timed.reduce(0.0) { total, batch in
        let length = batch.map(\.count).max()!, padded = batch.count * length
        let layer = 2 * padded * (4 * c.hiddenSize * c.hiddenSize + 2 * c.hiddenSize * c.intermediateSize) + 4 * padded * length * c.hiddenSize
        return total + 2 * Double(c.layerCount * layer)
    }
    let peak = options.peakGFlops ?? 97.0 * Double(options.threads)
    func rounded(_ x: Double, _ places: Double = 100) -> Double { (x * places).rounded() / places }
    let result: [String: Any] = [
        "engine": "graft", "mode": "main_job", "task": options.task, "method": method, "config": "e5-small",
        "threads": options.threads, "batch": options.batch, "steps": options.steps, "warmup": options.warmup,
        "batch_lengths": batches.map { $0.map(\.count) },
        "tokens": tokens, "padded_tokens": timed.reduce(0) { $0 + $1.count * $1.map(\.count).max()! },
        "seconds": rounded(seconds, 1000), "tokens_per_s": rounded(Double(tokens) / seconds, 10),
        "achieved_gflops": rounded(flops / seconds / 1e9), "executed_gflops": rounded(Double(executed) / seconds / 1e9),
        "peak_gflops_ref": peak, "frac_of_peak": rounded(flops / seconds / 1e9 / peak, 1000),
        "executed_frac_of_peak": rounded(Double(executed) / seconds / 1e9 / peak, 1000),
        "interleaved_peak_gflops": rounded(interleavedPeak, 10),
        "frac_of_interleaved_peak": rounded(flops / seconds / 1e9 / interleavedPeak, 1000),
        "loss_first": Double(losses.first!), "loss_last": Double(losses.last!),
        "peak_rss_mb": rounded(residentMemory().peak, 10),
    ]
    print(String(decoding: try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]), as: UTF8.self))
}
