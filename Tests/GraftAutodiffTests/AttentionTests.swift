import Testing
import GraftAutodiff
import GraftTensor

/// The fused `Variable.attention` against the composition it replaces, finite
/// differences, and its independence of the number of threads.
@Suite struct FusedAttention {
    // 2 examples x 11 tokens (a vector of 8 keys and a tail of 3), 3 heads of 4;
    // the second example has padded keys in both parts.
    static let (batch, length, heads, headSize) = (2, 11, 3, 4)
    static let hidden = heads * headSize
    static let keyMask = [Int](repeating: 1, count: 11) + [1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0]
    static let scale: Float = 0.5

    let inputs = (0..<3).map { random([batch * length, hidden], seed: 10 + UInt64($0)) }
    let outputGradient = random([batch * length, hidden], seed: 20)

    func fused(_ v: [Variable], dropout: DropoutMask? = nil, threads: Int = 2) -> Variable {
        Variable.attention(query: v[0], key: v[1], value: v[2], lengths: [Int](repeating: Self.length, count: Self.batch),
                           headCount: Self.heads, keyMask: Self.keyMask, scale: Self.scale, dropout: dropout, threads: threads)
    }

    /// Heads split off by reshape and permute, batched matmuls, masked softmax.
    func reference(_ v: [Variable], dropout: ((Variable) -> Variable)? = nil) -> Variable {
        func heads(_ x: Variable) -> Variable {
            x.reshaped([Self.batch, Self.length, Self.heads, Self.headSize]).permuted([0, 2, 1, 3])
        }
        let probabilities = Variable.matmul(heads(v[0]), heads(v[1]), transposeB: true)
            .maskedSoftmax(keyMask: Self.keyMask, scale: Self.scale)
        return Variable.matmul(dropout?(probabilities) ?? probabilities, heads(v[2]))
            .permuted([0, 2, 1, 3]).reshaped([Self.batch * Self.length, Self.hidden])
    }

    /// Output and input gradients of `f` with only the inputs in `tracked` watched.
    func run(tracked: Set<Int>, _ f: ([Variable]) -> Variable) -> (output: Tensor, gradients: [Tensor?]) {
        let tape = Tape()
        let variables = inputs.indices.map { tracked.contains($0) ? tape.watch(inputs[$0]) : Variable(inputs[$0]) }
        let output = f(variables)
        let gradients = tape.backward(output, seed: outputGradient)
        return (output.value, variables.map { gradients[$0] })
    }

    @Test(arguments: [[0, 1, 2], [0, 2], [1], [2]])
    func matchesTheUnfusedComposition(tracked: [Int]) {
        let fused = run(tracked: Set(tracked)) { self.fused($0) }
        let reference = run(tracked: Set(tracked)) { self.reference($0) }
        #expect(fused.output.maxAbsDifference(reference.output) < 1e-5)
        for i in 0..<3 {
            #expect((fused.gradients[i] == nil) == !tracked.contains(i))
            guard let gradient = fused.gradients[i], let expected = reference.gradients[i] else { continue }
            #expect(gradient.maxAbsDifference(expected) < 1e-5, "input \(i)")
        }
    }

    @Test func dropoutMatchesTheUnfusedDropoutOfTheSameSeed() {
        let count = Self.batch * Self.heads * Self.length * Self.length
        var generator = SeededGenerator(seed: 5)
        let mask = DropoutMask(count: count, probability: 0.3, generator: &generator)
        #expect(mask.kept.contains(false) && mask.kept.contains(true))
        let fused = run(tracked: [0, 1, 2]) { self.fused($0, dropout: mask) }
        let reference = run(tracked: [0, 1, 2]) { v in
            var generator = SeededGenerator(seed: 5)
            return self.reference(v) { $0.dropout(probability: 0.3, generator: &generator) }
        }
        #expect(fused.output.maxAbsDifference(reference.output) < 1e-5)
        for i in 0..<3 { #expect(fused.gradients[i]!.maxAbsDifference(reference.gradients[i]!) < 1e-5, "input \(i)") }
    }

    @Test func gradientsMatchFiniteDifferences() {
        expectGradientsMatch(inputs) { fused($0) }
        var generator = SeededGenerator(seed: 6)
        let mask = DropoutMask(count: Self.batch * Self.heads * Self.length * Self.length, probability: 0.2,
                               generator: &generator)
        expectGradientsMatch(inputs) { fused($0, dropout: mask) }
    }

    @Test func resultsDoNotDependOnTheThreadCount() {
        var generator = SeededGenerator(seed: 7)
        let mask = DropoutMask(count: Self.batch * Self.heads * Self.length * Self.length, probability: 0.1,
                               generator: &generator)
        let one = run(tracked: [0, 1, 2]) { fused($0, dropout: mask, threads: 1) }
        for threads in [2, 4] {
            let many = run(tracked: [0, 1, 2]) { fused($0, dropout: mask, threads: threads) }
            #expect(many.output == one.output)
            #expect(many.gradients == one.gradients)
        }
    }

    /// Backward runs only the GEMMs the tracked inputs need, and the workers'
    /// GEMMs are counted by the caller's counter.
    @Test(arguments: [([0, 1, 2], 4), ([0], 2), ([1], 2), ([2], 1), ([0, 2], 3)])
    func backwardRunsOnlyTheNeededGEMMs(tracked: [Int], backwardPerPair: Int) {
        let pairs = Self.batch * Self.heads
        let (counter, _) = GEMMCounter.measure { run(tracked: Set(tracked)) { fused($0) } }
        #expect(counter.calls == pairs * (2 + backwardPerPair))
    }
}

/// `Variable.attention` on a packed batch (examples of different lengths back to
/// back, no padding) against each example alone, and finite differences.
@Suite struct PackedAttention {
    static let (lengths, heads, headSize) = ([3, 7, 1, 5], 3, 4)
    static let rows = lengths.reduce(0, +), hidden = heads * headSize
    let inputs = (0..<3).map { random([rows, hidden], seed: 30 + UInt64($0)) }
    let outputGradient = random([rows, hidden], seed: 40)

    func attention(_ v: [Variable], lengths: [Int] = lengths, dropout: DropoutMask? = nil, threads: Int = 2) -> Variable {
        Variable.attention(query: v[0], key: v[1], value: v[2], lengths: lengths, headCount: Self.heads,
                           keyMask: [Int](repeating: 1, count: v[0].shape[0]), scale: 0.5, dropout: dropout, threads: threads)
    }

    func mask(probability: Float, seed: UInt64) -> DropoutMask {
        var generator = SeededGenerator(seed: seed)
        return DropoutMask(count: Self.heads * Self.lengths.reduce(0) { $0 + $1 * $1 }, probability: probability, generator: &generator)
    }

    /// Output and input gradients of the packed batch.
    func packed(dropout: DropoutMask? = nil, threads: Int = 2) -> (output: Tensor, gradients: [Tensor]) {
        let tape = Tape()
        let variables = inputs.map { tape.watch($0) }
        let output = attention(variables, dropout: dropout, threads: threads)
        let gradients = tape.backward(output, seed: outputGradient)
        return (output.value, variables.map { gradients[$0]! })
    }

    /// Each example's rows run alone (a batch of one, its slice of the dropout mask), joined.
    func alone(dropout: DropoutMask? = nil) -> (output: Tensor, gradients: [Tensor]) {
        var outputs: [Tensor] = [], gradients: [[Tensor]] = [[], [], []]
        var (row, flag) = (0, 0)
        for length in Self.lengths {
            let tape = Tape()
            let variables = inputs.map { tape.watch($0.slice(alongAxis: 0, row..<(row + length))) }
            let flags = Self.heads * length * length
            let part = dropout?.slice(flag..<(flag + flags))
            let output = attention(variables, lengths: [length], dropout: part)
            let found = tape.backward(output, seed: outputGradient.slice(alongAxis: 0, row..<(row + length)))
            outputs.append(output.value)
            for i in 0..<3 { gradients[i].append(found[variables[i]]!) }
            (row, flag) = (row + length, flag + flags)
        }
        return (Tensor.concatenate(outputs, alongAxis: 0), gradients.map { Tensor.concatenate($0, alongAxis: 0) })
    }

    @Test func eachExampleGetsExactlyWhatItGetsAlone() {
        let (packed, alone) = (packed(), alone())
        #expect(packed.output == alone.output)
        #expect(packed.gradients == alone.gradients)
        let mask = mask(probability: 0.3, seed: 8)
        let (packedDropped, aloneDropped) = (self.packed(dropout: mask), self.alone(dropout: mask))
        #expect(packedDropped.output == aloneDropped.output)
        #expect(packedDropped.gradients == aloneDropped.gradients)
    }

    @Test func gradientsMatchFiniteDifferences() {
        expectGradientsMatch(inputs) { attention($0) }
        let mask = mask(probability: 0.2, seed: 9)
        expectGradientsMatch(inputs) { attention($0, dropout: mask) }
    }

    @Test func resultsDoNotDependOnTheThreadCount() {
        let mask = mask(probability: 0.1, seed: 10)
        let one = packed(dropout: mask, threads: 1)
        for threads in [2, 3, 5, 16] { #expect(packed(dropout: mask, threads: threads) == one, "\(threads) threads") }
    }
}
