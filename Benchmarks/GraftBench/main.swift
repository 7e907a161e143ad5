// graft-bench: kernel and model benchmarks (GEMM wrapper vs Linear layer, tape
// overhead, LayerNorm, attention, an encoder layer forward + backward), and
// inference throughput of a backbone file.
//
//   swift run -c release graft-bench [--threads N] [--quick]
//   swift run -c release graft-bench --backbone e5.h5 [--batch 32] [--length 128] [--threads N]
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

/// Median seconds per call of `body` over `repetitions` timed calls after one warm-up.
func medianSeconds(repetitions: Int, _ body: () -> Void) -> Double {
    body()
    let clock = ContinuousClock()
    var samples: [Double] = []
    for _ in 0..<repetitions {
        let elapsed = clock.measure(body)
        samples.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }
    return samples.sorted()[samples.count / 2]
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
    let seconds = medianSeconds(repetitions: options.quick ? 2 : 5) { _ = backbone.encoder(input, context: .inference()) }
    let tokens = Double(options.batch * options.length)
    print("| backbone | threads | batch x tokens | time per batch | tokens/s |")
    print("|---|---|---|---|---|")
    print("| \(backbone.name) | \(options.threads) | \(options.batch) x \(options.length) | \(String(format: "%.1f", seconds * 1e3)) ms | \(String(format: "%.0f", tokens / seconds)) |")
    exit(0)
}
let repetitions = options.quick ? 3 : 30
var generator = SeededGenerator(seed: 0)
print("threads: \(options.threads), repetitions: \(repetitions) (median)\n")
print("| benchmark | time | throughput | ratio |")
print("|---|---|---|---|")

// 1. Raw sgemm against a Linear layer's forward + backward, (1024 x 384) x (384 x 1536).
let (rows, inputs, outputs) = (1024, 384, 1536)
let x = Tensor.normal(shape: [rows, inputs], generator: &generator)
let w = Tensor.normal(shape: [outputs, inputs], generator: &generator)
var c = Tensor(zeros: [rows, outputs])
let gemmSeconds = medianSeconds(repetitions: repetitions) {
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
let gemmRate = gemmFlops / gemmSeconds / 1e9
print("| raw cblas_sgemm 1024x384x1536 | \(String(format: "%.2f", gemmSeconds * 1e3)) ms | \(String(format: "%.1f", gemmRate)) GFLOP/s | 1.00 |")

let linear = Linear(weight: w, bias: Tensor(zeros: [outputs]))
let seed = Tensor(repeating: 1, shape: [rows, outputs])
let linearSeconds = medianSeconds(repetitions: repetitions) {
    let tape = Tape()
    let input = tape.watch(x)
    let y = linear(input, tape: tape)
    tape.backward(y, seed: seed)
    linear.weight.zeroGradient()
    linear.bias?.zeroGradient()
}
let linearRate = 3 * gemmFlops / linearSeconds / 1e9
print("| Linear forward + backward (3 GEMMs + bias) | \(String(format: "%.2f", linearSeconds * 1e3)) ms | \(String(format: "%.1f", linearRate)) GFLOP/s | \(String(format: "%.2f", linearRate / gemmRate)) of sgemm |")

// 2. Tape bookkeeping: a chain of element-wise ops on 4-element tensors, with and
// without a tape; the difference per op is the recording + backward overhead.
let chainLength = 1000
let small = Tensor(shape: [4], scalars: [0.1, 0.2, 0.3, 0.4])
func chain(_ start: Variable) -> Variable {
    var v = start
    for _ in 0..<chainLength { v = v * 1.0001 + 0.001 }
    return v
}
let untapedSeconds = medianSeconds(repetitions: repetitions) { _ = chain(Variable(small)) }
let tapedSeconds = medianSeconds(repetitions: repetitions) {
    let tape = Tape()
    let y = chain(tape.watch(small)).sum()
    tape.backward(y)
}
let ops = Double(2 * chainLength + 1)
let perOp = (tapedSeconds - untapedSeconds) / ops
print("| tape bookkeeping, 4-element ops (record + backward) | \(String(format: "%.2f", perOp * 1e6)) µs/op | \(String(format: "%.2f", tapedSeconds / ops * 1e6)) µs/op taped, \(String(format: "%.2f", untapedSeconds / ops * 1e6)) untaped | - |")

// 3. Kernels of an encoder block at multilingual-e5-small's width (batch 8 x 128 tokens).
let (batch, length, width, heads) = (8, 128, 384, 12)
let activations = Tensor.normal(shape: [batch * length, width], generator: &generator)
let gamma = Tensor(repeating: 1, shape: [width]), beta = Tensor(zeros: [width])
let layerNormSeconds = medianSeconds(repetitions: repetitions) {
    let tape = Tape()
    let x = tape.watch(activations)
    let y = x.layerNorm(gamma: Variable(gamma), beta: Variable(beta), epsilon: 1e-12)
    tape.backward(y, seed: activations)
}
print("| LayerNorm forward + backward, [1024, 384] | \(String(format: "%.2f", layerNormSeconds * 1e3)) ms | \(String(format: "%.2f", Double(activations.count * 4 * 4) / layerNormSeconds / 1e9)) GB/s (4 passes) | - |")

let scores = Tensor.normal(shape: [batch, heads, length, length], generator: &generator)
let mask = [Int](repeating: 1, count: batch * length)
let softmaxSeconds = medianSeconds(repetitions: repetitions) {
    let tape = Tape()
    let y = tape.watch(scores).maskedSoftmax(keyMask: mask, scale: 0.125)
    tape.backward(y, seed: scores)
}
print("| attention softmax forward + backward, [8, 12, 128, 128] | \(String(format: "%.2f", softmaxSeconds * 1e3)) ms | \(String(format: "%.0f", Double(scores.count) / softmaxSeconds / 1e6)) M elements/s | - |")

let configuration = EncoderConfiguration(modelType: "xlm-roberta", vocabularySize: 1000, hiddenSize: width, layerCount: 1,
                                         headCount: heads, intermediateSize: 4 * width, maxPositions: 514, padTokenID: 1)
let encoder = TransformerEncoder(configuration: configuration)
for (_, parameter) in encoder.namedParameters() {
    parameter.value = Tensor.normal(shape: parameter.value.shape, standardDeviation: 0.02, generator: &generator)
}
let layer = encoder.layers.elements[0]
let layerFlops = 2.0 * Double(batch * length) * Double(4 * width * width + 2 * width * 4 * width)
    + 4.0 * Double(batch * heads * length * length * (width / heads))
let layerSeconds = medianSeconds(repetitions: repetitions) {
    let tape = Tape()
    let x = tape.watch(activations)
    let y = layer(x, batchSize: batch, length: length, attentionMask: mask, context: .inference())
    tape.backward(y, seed: activations)
}
print("| encoder layer forward + input backward (frozen), 8 x 128 x 384 | \(String(format: "%.2f", layerSeconds * 1e3)) ms | \(String(format: "%.1f", 2 * layerFlops / layerSeconds / 1e9)) GFLOP/s | \(String(format: "%.2f", 2 * layerFlops / layerSeconds / 1e9 / gemmRate)) of sgemm |")
