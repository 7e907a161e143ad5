// `graft-bench step`: one masked-LM training step (or one forward pass) of a
// randomly initialised BERT, set up and measured as the PyTorch peer script
// `../shared/bench/peers/torch_peft_step.py` does, so the two can be compared
// run for run. Prints one JSON line.
import Foundation
import Graft

/// The encoder shapes of the peer script.
struct ModelShape {
    let layers: Int, hidden: Int, heads: Int, ffn: Int, vocabulary: Int

    static let named: [String: ModelShape] = [
        "tiny": ModelShape(layers: 2, hidden: 128, heads: 2, ffn: 512, vocabulary: 8000),
        "small": ModelShape(layers: 4, hidden: 256, heads: 4, ffn: 1024, vocabulary: 30000),
        "base": ModelShape(layers: 12, hidden: 768, heads: 12, ffn: 3072, vocabulary: 30000),
    ]

    func configuration(dropout: Float) -> EncoderConfiguration {
        EncoderConfiguration(vocabularySize: vocabulary, hiddenSize: hidden, layerCount: layers, headCount: heads,
                             intermediateSize: ffn, hiddenDropout: dropout, attentionDropout: dropout)
    }

    /// The peer script's FLOP model: matmul FLOPs of the encoder linears, the
    /// head transform, the tied decoder at every position, and `QKᵀ` and `AV`;
    /// training is 3x forward for full fine-tuning, else 2x forward plus 3x the
    /// adapter's matmuls (2 FLOPs per adapter parameter and token).
    func modelFlops(tokens: Int, length: Int, training: Bool, full: Bool, adapterParameters: Int) -> Double {
        let matmulParameters = layers * (4 * hidden * hidden + 2 * hidden * ffn) + hidden * hidden + hidden * vocabulary
        let forward = 2.0 * Double(tokens * matmulParameters) + Double(layers * 4 * tokens * length * hidden)
        let adapter = 2.0 * Double(tokens * adapterParameters)
        if !training { return forward + adapter }
        return full ? 3 * forward : 2 * forward + 3 * adapter
    }
}

struct StepOptions {
    var shape = "tiny", method = "lora", mode = "train", decoder = "masked"
    /// `lean`: encoder layers recompute their activations in backward and the
    /// optimizer updates each parameter as soon as its gradient is complete.
    var memory = "standard"
    var threads = 1, steps = 10, warmup = 2, batch = 8, length = 128
    var dropout: Float = 0.1
    var peakGFlops: Double?

    static let methods = ["lora", "seq_bn", "seq_bn_inv", "mos", "unipt", "full", "none"]
    static let usage = """
        usage: graft-bench step [--config tiny|small|base] [--method \(methods.joined(separator: "|"))]
                                [--mode train|infer] [--decoder masked|all] [--memory standard|lean]
                                [--threads N] [--steps N] [--warmup N]
                                [--batch B] [--seq T] [--dropout P] [--peak-gflops G]
        """

    /// Parses the options after `step`.
    init(_ arguments: ArraySlice<String>) throws {
        var rest = arguments
        func value() throws -> String {
            guard let next = rest.popFirst() else { throw UsageError(StepOptions.usage) }
            return next
        }
        func number<T: LosslessStringConvertible>(_ name: String) throws -> T {
            let text = try value()
            guard let parsed = T(text) else { throw UsageError("\(name): not a number: \(text)") }
            return parsed
        }
        while let argument = rest.popFirst() {
            switch argument {
            case "--config": shape = try value()
            case "--method": method = try value()
            case "--mode": mode = try value()
            case "--decoder": decoder = try value()
            case "--memory": memory = try value()
            case "--steps": steps = try number(argument)
            case "--warmup": warmup = try number(argument)
            case "--batch": batch = try number(argument)
            case "--seq": length = try number(argument)
            case "--dropout": dropout = try number(argument)
            case "--peak-gflops": peakGFlops = try number(argument)
            case "--threads": threads = try number(argument)
            default: throw UsageError(StepOptions.usage)
            }
        }
        guard ModelShape.named[shape] != nil else { throw UsageError("unknown --config \(shape); expected tiny, small or base") }
        guard StepOptions.methods.contains(method) else { throw UsageError("unknown --method \(method)\n" + StepOptions.usage) }
        guard ["train", "infer"].contains(mode), ["masked", "all"].contains(decoder),
              ["standard", "lean"].contains(memory) else { throw UsageError(StepOptions.usage) }
        guard !(mode == "train" && method == "none") else { throw UsageError("--method none is for --mode infer") }
        guard threads > 0, steps > 0, warmup >= 0, batch > 0, length > 1 else { throw UsageError("steps, batch and seq must be positive") }
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A random BERT with the method attached, its masked-LM head, and one batch.
final class StepModel {
    let options: StepOptions
    let shape: ModelShape
    let model: GraftedModel
    let head: MaskedLMHead
    let optimizer: AdamW?
    let input: EncoderInput
    /// Masked positions (flat row indices) and their labels.
    let maskedRows: [Int], maskedLabels: [Int]
    /// Labels of every position (`Variable.ignoreIndex` where not masked).
    let labels: [Int]
    let totalParameters: Int, adapterParameters: Int, trainableParameters: Int

    init(_ options: StepOptions) throws {
        self.options = options
        shape = ModelShape.named[options.shape]!
        let configuration = shape.configuration(dropout: options.dropout)
        let encoder = TransformerEncoder(configuration: configuration)
        var generator = SeededGenerator(seed: 0)
        for (name, parameter) in encoder.namedParameters() {
            parameter.value = name.hasSuffix("LayerNorm.weight")
                ? Tensor(repeating: 1, shape: parameter.value.shape)
                : name.hasSuffix("bias") || name.hasSuffix("LayerNorm.bias")
                ? Tensor(zeros: parameter.value.shape)
                : Tensor.normal(shape: parameter.value.shape, standardDeviation: 0.02, generator: &generator)
        }
        model = GraftedModel(encoder: encoder)
        head = MaskedLMHead(tiedTo: encoder, generator: &generator)
        head.setTrainable(false)
        let backboneParameters = (encoder.namedParameters() + head.namedParameters()).reduce(0) { $0 + $1.parameter.value.count }

        var trainable: [Parameter] = []
        switch options.method {
        case "none":
            break
        case "full":
            encoder.setTrainable(true)
            head.setTrainable(true)
            trainable = (encoder.trainableParameters() + head.trainableParameters()).map(\.parameter)
        default:
            var adapterConfiguration = try AdapterConfiguration(method: options.method)
            if let lora = adapterConfiguration.settings as? LoRAConfiguration {
                adapterConfiguration = AdapterConfiguration(lora.applying(AdapterOverrides(alpha: 16)))  // as the peer's LoraConfig(r=8, lora_alpha=16)
            }
            try model.add("a", adapterConfiguration.makeAdapter(model: configuration, seed: 1))
            try model.activate(.single("a"))
            trainable = model.namedParameters().map(\.parameter)
        }
        adapterParameters = options.method == "full" ? 0 : trainable.reduce(0) { $0 + $1.value.count }
        totalParameters = backboneParameters + adapterParameters
        trainableParameters = trainable.reduce(0) { $0 + $1.value.count }
        optimizer = options.mode == "train"
            ? AdamW(parameters: trainable, learningRate: options.method == "full" ? 1e-4 : 1e-3, weightDecay: 0.01)
            : nil

        // The peer's batch: ids uniform in [5, vocabulary), 15% of positions masked to id 4.
        var ids: [Int] = [], labels: [Int] = []
        for _ in 0..<(options.batch * options.length) {
            let id = 5 + Int(generator.next() % UInt64(shape.vocabulary - 5))
            let masked = generator.nextUnitFloat() < 0.15
            ids.append(masked ? 4 : id)
            labels.append(masked ? id : Variable.ignoreIndex)
        }
        input = EncoderInput(ids: ids, attentionMask: [Int](repeating: 1, count: ids.count),
                             batchSize: options.batch, length: options.length)
        self.labels = labels
        maskedRows = labels.indices.filter { labels[$0] != Variable.ignoreIndex }
        maskedLabels = maskedRows.map { labels[$0] }
    }

    /// One timed unit of work; returns the loss (training) or one logit (inference).
    func step(seed: UInt64) -> Float {
        let allRows = Array(0..<input.ids.count)
        guard let optimizer else {
            let context = model.context()
            let rows = options.decoder == "all" ? allRows : maskedRows
            return head(model(input, context: context), rows: rows, context: context).value.scalars[0]
        }
        let tape = Tape()
        let lean = options.memory == "lean"
        let context = model.context(tape: tape, isTraining: true, seed: seed)
        context.recomputesLayers = lean
        let loss = options.decoder == "all"
            ? head.loss(model(input, context: context), rows: allRows, targets: labels, context: context)
            : head.loss(model(input, context: context), rows: maskedRows, targets: maskedLabels, context: context)
        if lean {
            optimizer.step(backward: loss, on: tape)
        } else {
            tape.backward(loss)
            optimizer.step()
        }
        for parameter in optimizer.parameters { parameter.zeroGradient() }
        return loss.value.scalar
    }
}

/// Resident memory now and at its peak, in MiB.
func residentMemory() -> (now: Double, peak: Double) {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
    let pages = Double(statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0)
    return (pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1048576, Double(usage.ru_maxrss) / 1024)
}

func runStep(_ options: StepOptions) throws {
    let threads = options.threads
    BLAS.setThreadCount(threads)
    let model = try StepModel(options)
    let memoryWithModel = residentMemory().now
    let training = options.mode == "train"
    var losses: [Float] = []
    var seed: UInt64 = 0
    for _ in 0..<options.warmup { seed += 1; losses.append(model.step(seed: seed)) }
    let executed = GEMMCounter.measure { seed += 1; losses.append(model.step(seed: seed)) }.counter.flops
    let clock = ContinuousClock()
    var times: [Double] = []
    for _ in 0..<options.steps {
        seed += 1
        let elapsed = clock.measure { losses.append(model.step(seed: seed)) }
        times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
    let median = times.sorted()[times.count / 2]
    let tokens = options.batch * options.length
    let flops = model.shape.modelFlops(tokens: tokens, length: options.length, training: training,
                                       full: options.method == "full", adapterParameters: model.adapterParameters)
    let peak = options.peakGFlops ?? 97.0 * Double(threads)
    let memory = residentMemory()
    func rounded(_ x: Double, _ places: Double = 100) -> Double { (x * places).rounded() / places }
    let result: [String: Any] = [
        "engine": "graft", "mode": options.mode, "config": options.shape, "method": options.method,
        "threads": threads, "batch": options.batch, "seq": options.length, "dropout": Double(options.dropout),
        "decoder": options.decoder, "memory": options.memory, "total_params": model.totalParameters,
        "trainable_params": model.trainableParameters, "adapter_params": model.adapterParameters,
        "steps": options.steps, "warmup": options.warmup,
        "ms_median": rounded(median * 1e3), "ms_min": rounded(times.min()! * 1e3),
        "ms_all": times.map { rounded($0 * 1e3, 10) },
        "tokens_per_s": rounded(Double(tokens) / median, 10),
        "gflop_step": rounded(flops / 1e9, 1000), "gflop_executed": rounded(Double(executed) / 1e9, 1000),
        "achieved_gflops": rounded(flops / median / 1e9), "executed_gflops": rounded(Double(executed) / median / 1e9),
        "peak_gflops_ref": peak, "frac_of_peak": rounded(flops / median / 1e9 / peak, 1000),
        "executed_frac_of_peak": rounded(Double(executed) / median / 1e9 / peak, 1000),
        "loss_first": training ? Double(losses.first!) : NSNull(),
        "loss_last": training ? Double(losses.last!) : NSNull(),
        "rss_mb_model": rounded(memoryWithModel, 10), "rss_mb_end": rounded(memory.now, 10),
        "peak_rss_mb": rounded(memory.peak, 10),
    ]
    let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
    print(String(decoding: json, as: UTF8.self))
}
