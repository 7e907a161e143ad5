// graft-bench: foundation benchmarks (GEMM wrapper vs Linear layer, tape overhead).
//
//   swift run -c release graft-bench [--threads N] [--quick]
//
// Prints a Markdown table; `Docs/benchmarks.md` records its output.
import Foundation
import Graft

struct Options {
    var threads = 1
    var quick = false

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            switch argument {
            case "--threads": threads = rest.popFirst().flatMap(Int.init) ?? threads
            case "--quick": quick = true
            default:
                FileHandle.standardError.write("usage: graft-bench [--threads N] [--quick]\n".data(using: .utf8)!)
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
