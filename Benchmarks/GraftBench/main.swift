// graft-bench: kernel and model benchmarks (GEMM wrapper vs Linear layer, tape
// overhead, LayerNorm, attention, an encoder layer forward + backward), and
// inference throughput of a backbone file.
//
//   swift run -c release graft-bench [--threads N] [--quick]
//   swift run -c release graft-bench --backbone e5.h5 [--batch 32] [--length 128] [--threads N]
//   swift run -c release graft-bench step --config tiny --method lora [--threads N] ...  (see TrainingStep.swift)
//   swift run -c release graft-bench main-job --task classify|mlm [--threads N] ...  (see MainJobStep.swift)
//   swift run -c release graft-bench gemm-peak --threads N   (sgemm GFLOP/s, 1024³, as JSON)
//
// Prints Markdown tables; `Docs/benchmarks.md` records their output.
import Foundation
import Graft

struct Options {
    var threads = 1
    var quick = false
    var backbone: String?
    var batch = 32
    var length = 128

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            switch argument {
            case "--threads": threads = rest.popFirst().flatMap(Int.init) ?? threads
            case "--quick": quick = true
            case "--backbone": backbone = rest.popFirst()
            case "--batch": batch = rest.popFirst().flatMap(Int.init) ?? batch
            case "--length": length = rest.popFirst().flatMap(Int.init) ?? length
            default:
                FileHandle.standardError.write(Data("usage: graft-bench [--threads N] [--quick] [--backbone FILE [--batch B] [--length T]]\n".utf8))
                exit(2)
            }
        }
    }
}

if CommandLine.arguments.dropFirst().first == "gemm-peak" {
    // The machine's sgemm peak as the suite's reference: 1024 x 1024 x 1024, median of 20.
    let threads = CommandLine.arguments.dropFirst(2).last.flatMap(Int.init) ?? 1
    BLAS.setThreadCount(threads)
    var generator = SeededGenerator(seed: 0)
    let n = 1024
    let a = Tensor.normal(shape: [n, n], generator: &generator), b = Tensor.normal(shape: [n, n], generator: &generator)
    let seconds = Measurement(repetitions: 20) { _ = Tensor.matmul(a, b) }.seconds
    print("{\"engine\": \"graft\", \"mode\": \"gemm_peak\", \"threads\": \(threads), \"gflops\": \(String(format: "%.1f", 2 * Double(n * n * n) / seconds / 1e9))}")
    exit(0)
}

// The training-step subcommands, each printing one JSON line.
let stepCommands: [String: (ArraySlice<String>) throws -> Void] = [
    "step": { try runStep(StepOptions($0)) },
    "main-job": { try runMainJob(MainJobOptions($0)) },
]
if let name = CommandLine.arguments.dropFirst().first, let command = stepCommands[name] {
    Memory.reuseLargeAllocations()
    do { try command(CommandLine.arguments.dropFirst(2)) } catch {
        FileHandle.standardError.write(Data("graft-bench \(name): \(error)\n".utf8))
        exit(2)
    }
    exit(0)
}

let options = Options(CommandLine.arguments)
BLAS.setThreadCount(options.threads)
Memory.reuseLargeAllocations()

if let path = options.backbone {
    // Inference throughput: forward passes over random ids of the real vocabulary.
    let backbone: Backbone
    do { backbone = try Backbone.load(from: path) } catch {
        FileHandle.standardError.write(Data("graft-bench: \(error)\n".utf8))
        exit(1)
    }
    var generator = SeededGenerator(seed: 0)
    let vocabulary = backbone.tokenizer.vocabularySize
    let rows = (0..<options.batch).map { _ in (0..<options.length).map { _ in 3 + Int(generator.next() % UInt64(vocabulary - 3)) } }
    let input = EncoderInput(padding: rows, padID: backbone.tokenizer.padID)
    let forward = { _ = backbone.encoder(input, context: .inference()) }
    let seconds = Measurement(repetitions: options.quick ? 2 : 5, forward).seconds
    let flops = Double(GEMMCounter.measure(forward).0.flops)  // the matmuls and attention products of one batch
    let tokens = Double(options.batch * options.length)
    print("{\"engine\": \"graft\", \"backbone\": \"\(backbone.name)\", \"threads\": \(options.threads), \"batch\": \(options.batch), "
          + "\"length\": \(options.length), \"ms_per_batch\": \(String(format: "%.2f", seconds * 1e3)), "
          + "\"tokens_per_s\": \(String(format: "%.1f", tokens / seconds)), \"executed_gflops\": \(String(format: "%.1f", flops / seconds / 1e9))}")
    exit(0)
}
let repetitions = options.quick ? 3 : 30
var generator = SeededGenerator(seed: 0)
print("threads: \(options.threads), repetitions: \(repetitions) (median)\n")
print("| benchmark | time | throughput | ratio | allocations / call | MiB allocated / call |")
print("|---|---|---|---|---|---|")
func rate(_ flops: Double, _ seconds: Double) -> Double { flops / seconds / 1e9 }
func gflops(_ flops: Double, _ seconds: Double) -> String { String(format: "%.1f GFLOP/s", rate(flops, seconds)) }

// 1. Raw sgemm against a Linear layer's forward + backward, (1024 x 384) x (384 x 1536).
let (rows, inputs, outputs) = (1024, 384, 1536)
let x = Tensor.normal(shape: [rows, inputs], generator: &generator)
let w = Tensor.normal(shape: [outputs, inputs], generator: &generator)
var c = Tensor(zeros: [rows, outputs])
let gemm = Measurement(repetitions: repetitions) {
    x.scalars.withUnsafeBufferPointer { a in
        w.scalars.withUnsafeBufferPointer { b in
            c.scalars.withUnsafeMutableBufferPointer { out in
                BLAS.gemm(transposeA: false, transposeB: true, m: rows, n: outputs, k: inputs,
                          a: a.baseAddress!, lda: inputs, b: b.baseAddress!, ldb: inputs, c: out.baseAddress!, ldc: outputs)
            }
        }
    }
}
let gemmFlops = 2.0 * Double(rows * inputs * outputs)
let gemmRate = rate(gemmFlops, gemm.seconds)
func ofSgemm(_ flops: Double, _ seconds: Double) -> String { String(format: "%.2f of sgemm", rate(flops, seconds) / gemmRate) }
print(gemm.row("raw cblas_sgemm 1024x384x1536", throughput: gflops(gemmFlops, gemm.seconds), ratio: "1.00"))

let linear = Linear(weight: w, bias: Tensor(zeros: [outputs]))
let seed = Tensor(repeating: 1, shape: [rows, outputs])
let linearStep = Measurement(repetitions: repetitions) {
    let tape = Tape()
    let y = linear(tape.watch(x), tape: tape)
    tape.backward(y, seed: seed)
    linear.weight.zeroGradient()
    linear.bias?.zeroGradient()
}
print(linearStep.row("Linear forward + backward (3 GEMMs + bias)", throughput: gflops(3 * gemmFlops, linearStep.seconds),
                     ratio: ofSgemm(3 * gemmFlops, linearStep.seconds)))

// 2. Tape bookkeeping: a chain of element-wise ops on 4-element tensors, with and
// without a tape; the difference per op is the recording + backward overhead.
let chainLength = 1000
let small = Tensor(shape: [4], scalars: [0.1, 0.2, 0.3, 0.4])
func chain(_ start: Variable) -> Variable {
    var v = start
    for _ in 0..<chainLength { v = v * 1.0001 + 0.001 }
    return v
}
let untaped = Measurement(repetitions: repetitions) { _ = chain(Variable(small)) }
let taped = Measurement(repetitions: repetitions) {
    let tape = Tape()
    tape.backward(chain(tape.watch(small)).sum())
}
let ops = Double(2 * chainLength + 1)
print(taped.row("tape bookkeeping, 2,001 4-element ops (record + backward)",
                throughput: String(format: "%.2f µs/op taped, %.2f untaped", taped.seconds / ops * 1e6, untaped.seconds / ops * 1e6),
                ratio: String(format: "%.2f µs/op overhead", (taped.seconds - untaped.seconds) / ops * 1e6)))

// 3. Kernels of an encoder block at multilingual-e5-small's width (batch 8 x 128 tokens).
let (batch, length, width, heads) = (8, 128, 384, 12)
let activations = Tensor.normal(shape: [batch * length, width], generator: &generator)
let gamma = Tensor(repeating: 1, shape: [width]), beta = Tensor(zeros: [width])
let layerNorm = Measurement(repetitions: repetitions) {
    let tape = Tape()
    let y = tape.watch(activations).layerNorm(gamma: Variable(gamma), beta: Variable(beta), epsilon: 1e-12)
    tape.backward(y, seed: activations)
}
print(layerNorm.row("LayerNorm forward + input backward, [1024, 384]",
                    throughput: String(format: "%.2f GB/s (4 passes)", Double(activations.count * 4 * 4) / layerNorm.seconds / 1e9)))

let gelu = Measurement(repetitions: repetitions) {
    let tape = Tape()
    tape.backward(tape.watch(seed).gelu(), seed: seed)
}
print(gelu.row("GELU forward + backward, [1024, 1536]",
               throughput: String(format: "%.0f M elements/s", Double(seed.count) / gelu.seconds / 1e6)))

let configuration = EncoderConfiguration(modelType: "xlm-roberta", vocabularySize: 1000, hiddenSize: width, layerCount: 1,
                                         headCount: heads, intermediateSize: 4 * width, maxPositions: 514, padTokenID: 1)
let encoder = TransformerEncoder(configuration: configuration)
for (_, parameter) in encoder.namedParameters() {
    parameter.value = Tensor.normal(shape: parameter.value.shape, standardDeviation: 0.02, generator: &generator)
}
let layer = encoder.layers.elements[0]
let mask = [Int](repeating: 1, count: batch * length)
let attentionFlops = 4.0 * Double(batch * heads * length * length * (width / heads))
let projectionFlops = 2.0 * Double(batch * length) * Double(4 * width * width)
let attention = Measurement(repetitions: repetitions) {
    let tape = Tape()
    let y = layer.selfAttention(tape.watch(activations), lengths: [Int](repeating: length, count: batch), attentionMask: mask,
                                layer: 0, context: .inference())
    tape.backward(y, seed: activations)
}
let attentionWork = 2 * (attentionFlops + 0.75 * projectionFlops)
print(attention.row("self-attention (Q, K, V + heads) forward + input backward, 8 x 128 x 384",
                    throughput: gflops(attentionWork, attention.seconds), ratio: ofSgemm(attentionWork, attention.seconds)))

let layerWork = 2 * (projectionFlops + 2.0 * Double(batch * length) * Double(2 * width * 4 * width) + attentionFlops)
let layerStep = Measurement(repetitions: repetitions) {
    let tape = Tape()
    let y = layer(tape.watch(activations), lengths: [Int](repeating: length, count: batch), attentionMask: mask, context: .inference())
    tape.backward(y, seed: activations)
}
print(layerStep.row("encoder layer forward + input backward (frozen), 8 x 128 x 384",
                    throughput: gflops(layerWork, layerStep.seconds), ratio: ofSgemm(layerWork, layerStep.seconds)))
