import CKernels
import GraftTensor

extension Variable {
    /// Multi-head scaled dot-product self-attention as one operation: for each
    /// example `b` and head `h`, `dropout(softmax(scale · Q_bh K_bhᵀ + mask)) V_bh`.
    ///
    /// `query`, `key` and `value` are `[rows, hidden]`, the rows of example `b`
    /// (`lengths[b]` of them) right after those of example `b - 1`: a padded batch
    /// gives every example the same length, a packed one each its own, with no
    /// padding. The heads lie side by side along the last axis (head `h` is columns
    /// `h d ..< (h + 1) d`) as the projections produce them; the result has the same
    /// layout. `keyMask` has an entry per row, 0 for padded keys. `dropout`, if any,
    /// masks the probabilities: for each example, `heads` blocks of `lengths[b]²`.
    ///
    /// The (example, head) pairs are spread over `threads` workers; each runs
    /// single-threaded GEMMs on strided views of the inputs and writes straight
    /// into the output, so no head is copied and the result does not depend on
    /// `threads`. Backward keeps the probabilities (before dropout) and only the
    /// inputs that the tracked inputs' gradients need.
    public static func attention(query: Variable, key: Variable, value: Variable,
                                 lengths: [Int], headCount: Int, keyMask: [Int], scale: Float,
                                 dropout: DropoutMask? = nil, threads: Int = BLAS.threadCount) -> Variable {
        let shape = query.shape
        precondition(shape.count == 2 && key.shape == shape && value.shape == shape && lengths.allSatisfy { $0 > 0 }
                     && shape[0] == lengths.reduce(0, +) && headCount > 0 && shape[1] % headCount == 0
                     && keyMask.count == shape[0],
                     "attention: query \(query.shape), key \(key.shape), value \(value.shape) and \(keyMask.count) mask entries "
                     + "for examples of \(lengths) rows and \(headCount) heads")
        let layout = AttentionLayout(lengths: lengths, headCount: headCount, headSize: shape[1] / headCount,
                                     scale: scale, keptScale: dropout?.scale ?? 1)
        precondition(dropout.map { $0.kept.count == layout.probabilityCount } ?? true,
                     "attention: the dropout mask needs heads * (sum of squared lengths) = \(layout.probabilityCount) elements")
        let tracked = query.isTracked || key.isTracked || value.isTracked
        // Probabilities before dropout: kept for backward, else in per-worker scratch
        // after the block for the dropped probabilities.
        var probabilities = unset(tracked ? layout.probabilityCount : 0)
        var output = Tensor(shape: shape, scalars: unset(shape[0] * shape[1]))
        let dropped = dropout == nil ? 0 : layout.largestBlock
        let scratch = dropped + (tracked ? 0 : layout.largestBlock)
        // Per key, scaled score = score * factor + shift: (scale, 0), or (0, -1e9) for padding.
        let keyTerms = keyMask.map { $0 == 0 ? 0 : scale } + keyMask.map { $0 == 0 ? -1e9 : 0 }
        query.value.scalars.withUnsafeBufferPointer { q in
            key.value.scalars.withUnsafeBufferPointer { k in
                value.value.scalars.withUnsafeBufferPointer { v in
                    keyTerms.withUnsafeBufferPointer { terms in
                        (dropout?.kept ?? []).withUnsafeBufferPointer { kept in
                            probabilities.withUnsafeMutableBufferPointer { saved in
                                output.scalars.withUnsafeMutableBufferPointer { out in
                                    layout.forEachPair(threads: threads, scratch: scratch) { pair, buffer in
                                        let p = tracked ? saved.baseAddress! + layout.blockStart(pair) : buffer + dropped
                                        layout.forward(pair, q: q.baseAddress!, k: k.baseAddress!, v: v.baseAddress!,
                                                       factors: terms.baseAddress!, shifts: terms.baseAddress! + shape[0],
                                                       kept: dropout == nil ? nil : kept.baseAddress,
                                                       probabilities: p, dropped: buffer, output: out.baseAddress!)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        guard tracked else { return Variable(output) }

        // dQ needs K, dK needs Q, and both need V (through the probabilities' gradient).
        let savedQuery = key.isTracked ? query.value.scalars : []
        let savedKey = query.isTracked ? key.value.scalars : []
        let savedValue = query.isTracked || key.isTracked ? value.value.scalars : []
        return differentiable(output, query, key, value) { g, needed in
            let gradient = { (needed: Bool) in unset(needed ? shape[0] * shape[1] : 0) }
            var (dQuery, dKey, dValue) = (gradient(needed[0]), gradient(needed[1]), gradient(needed[2]))
            let needsScores = needed[0] || needed[1]
            let scratch = (dropout == nil ? 0 : layout.largestBlock) + (needsScores ? layout.largestBlock : 0)
            g.scalars.withUnsafeBufferPointer { dO in
                savedQuery.withUnsafeBufferPointer { q in
                    savedKey.withUnsafeBufferPointer { k in
                        savedValue.withUnsafeBufferPointer { v in
                            (dropout?.kept ?? []).withUnsafeBufferPointer { kept in
                                probabilities.withUnsafeBufferPointer { p in
                                    dQuery.withUnsafeMutableBufferPointer { dQ in
                                        dKey.withUnsafeMutableBufferPointer { dK in
                                            dValue.withUnsafeMutableBufferPointer { dV in
                                                layout.forEachPair(threads: threads, scratch: scratch) { pair, buffer in
                                                    layout.backward(pair, dO: dO.baseAddress!, q: q.baseAddress, k: k.baseAddress,
                                                                    v: v.baseAddress, kept: dropout == nil ? nil : kept.baseAddress,
                                                                    probabilities: p.baseAddress! + layout.blockStart(pair),
                                                                    dQ: needed[0] ? dQ.baseAddress : nil,
                                                                    dK: needed[1] ? dK.baseAddress : nil,
                                                                    dV: needed[2] ? dV.baseAddress : nil, scratch: buffer)
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return zip([dQuery, dKey, dValue], needed).map { $1 ? Tensor(shape: shape, scalars: $0) : nil }
        }
    }
}

/// The per-(example, head) kernels of `Variable.attention` on raw buffers.
///
/// Rows of the `[rows, hidden]` buffers are tokens; the block of head `h` of
/// example `b` (pair `b * headCount + h`) starts at the example's first row,
/// column `h * headSize`, with leading dimension `hidden`. Probabilities and
/// scratch blocks are contiguous `lengths[b] x lengths[b]` matrices, the
/// probabilities example by example, head by head.
private struct AttentionLayout {
    let lengths: [Int]
    let headCount, headSize: Int
    /// The scale of the scores (forward applies it through the key factors).
    let scale: Float
    /// The factor of kept elements under dropout.
    let keptScale: Float
    /// Each example's first row, and the start of its first head's probabilities.
    let firstRows: [Int], firstBlocks: [Int]
    /// Elements of all the probabilities, and of the largest block.
    let probabilityCount: Int, largestBlock: Int

    init(lengths: [Int], headCount: Int, headSize: Int, scale: Float, keptScale: Float) {
        (self.lengths, self.headCount, self.headSize, self.scale, self.keptScale) = (lengths, headCount, headSize, scale, keptScale)
        var rows = 0, blocks = 0, firstRows: [Int] = [], firstBlocks: [Int] = []
        for length in lengths {
            firstRows.append(rows)
            firstBlocks.append(blocks)
            rows += length
            blocks += headCount * length * length
        }
        (self.firstRows, self.firstBlocks, probabilityCount) = (firstRows, firstBlocks, blocks)
        largestBlock = (lengths.max() ?? 0) * (lengths.max() ?? 0)
    }

    var hidden: Int { headCount * headSize }
    var pairs: Int { lengths.count * headCount }
    /// The length of pair `pair`'s example.
    func length(_ pair: Int) -> Int { lengths[pair / headCount] }
    /// Elements of pair `pair`'s score matrix.
    func block(_ pair: Int) -> Int { length(pair) * length(pair) }
    /// Offset of pair `pair`'s head block in a `[rows, hidden]` buffer.
    func offset(_ pair: Int) -> Int { firstRows[pair / headCount] * hidden + (pair % headCount) * headSize }
    /// Offset of pair `pair`'s probabilities (and dropout flags).
    func blockStart(_ pair: Int) -> Int { firstBlocks[pair / headCount] + (pair % headCount) * block(pair) }

    /// Calls `body(pair, scratch)` for every pair, split into contiguous runs of
    /// about equal work (score elements) over `threads` workers, each with its own
    /// `scratch` floats.
    func forEachPair(threads: Int, scratch: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let workers = Swift.max(1, Swift.min(threads, pairs))
        // Worker w takes the pairs whose blocks start in its share of all the blocks' elements.
        var first = [0], pair = 0
        for worker in 1..<workers {
            while pair < pairs && blockStart(pair) < probabilityCount * worker / workers { pair += 1 }
            first.append(pair)
        }
        first.append(pairs)
        BLAS.concurrentPerform(workers: workers) { worker in
            guard first[worker] < first[worker + 1] else { return }
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: Swift.max(scratch, 1))
            defer { buffer.deallocate() }
            for pair in first[worker]..<first[worker + 1] { body(pair, buffer) }
        }
    }

    /// `p = softmax(Q Kᵀ ⊙ factors + shifts)` (per key), then `output = dropout(p) V`;
    /// the dropped probabilities go through `dropped` (`kept` is nil without dropout).
    func forward(_ pair: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                 factors: UnsafePointer<Float>, shifts: UnsafePointer<Float>, kept: UnsafePointer<Bool>?,
                 probabilities p: UnsafeMutablePointer<Float>, dropped: UnsafeMutablePointer<Float>,
                 output: UnsafeMutablePointer<Float>) {
        let (at, length) = (offset(pair), length(pair))
        BLAS.gemm(transposeA: false, transposeB: true, m: length, n: length, k: headSize,
                  a: q + at, lda: hidden, b: k + at, ldb: hidden, c: p, ldc: length)
        let keys = firstRows[pair / headCount]
        softmax(p, length: length, factors: factors + keys, shifts: shifts + keys)
        let weights = applyDropout(p, kept: kept, pair: pair, into: dropped)
        BLAS.gemm(transposeA: false, transposeB: false, m: length, n: headSize, k: length,
                  a: weights, lda: length, b: v + at, ldb: hidden, c: output + at, ldc: hidden)
    }

    /// Gradients of one pair's head blocks from the output gradient `dO`, for
    /// the non-nil ones of `dQ`, `dK`, `dV`: `dV = P̃ᵀ dO`, `dP̃ = dO Vᵀ`, then
    /// through dropout and softmax to `dS`, `dQ = dS K`, `dK = dSᵀ Q`. `scratch`
    /// holds the dropped probabilities and `dS`.
    func backward(_ pair: Int, dO: UnsafePointer<Float>, q: UnsafePointer<Float>?, k: UnsafePointer<Float>?,
                  v: UnsafePointer<Float>?, kept: UnsafePointer<Bool>?, probabilities p: UnsafePointer<Float>,
                  dQ: UnsafeMutablePointer<Float>?, dK: UnsafeMutablePointer<Float>?, dV: UnsafeMutablePointer<Float>?,
                  scratch: UnsafeMutablePointer<Float>) {
        let (at, length, block) = (offset(pair), length(pair), block(pair))
        if let dV {
            let weights = applyDropout(p, kept: kept, pair: pair, into: scratch)
            BLAS.gemm(transposeA: true, transposeB: false, m: length, n: headSize, k: length,
                      a: weights, lda: length, b: dO + at, ldb: hidden, c: dV + at, ldc: hidden)
        }
        guard dQ != nil || dK != nil, let v else { return }
        let dS = scratch + (kept == nil ? 0 : block)
        BLAS.gemm(transposeA: false, transposeB: true, m: length, n: length, k: headSize,
                  a: dO + at, lda: hidden, b: v + at, ldb: hidden, c: dS, ldc: length)
        if let kept {
            let flags = kept + blockStart(pair)
            for i in 0..<block { dS[i] = flags[i] ? dS[i] * keptScale : 0 }
        }
        softmaxBackward(dS, length: length, probabilities: p)
        if let dQ, let k {
            BLAS.gemm(transposeA: false, transposeB: false, m: length, n: headSize, k: length,
                      a: dS, lda: length, b: k + at, ldb: hidden, c: dQ + at, ldc: hidden)
        }
        if let dK, let q {
            BLAS.gemm(transposeA: true, transposeB: false, m: length, n: headSize, k: length,
                      a: dS, lda: length, b: q + at, ldb: hidden, c: dK + at, ldc: hidden)
        }
    }

    /// The probabilities after dropout: `p` itself without a mask, else `p`
    /// masked and scaled into `buffer`.
    private func applyDropout(_ p: UnsafePointer<Float>, kept: UnsafePointer<Bool>?, pair: Int,
                              into buffer: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        guard let kept else { return p }
        let flags = kept + blockStart(pair)
        for i in 0..<block(pair) { buffer[i] = flags[i] ? p[i] * keptScale : 0 }
        return UnsafePointer(buffer)
    }

    /// Row-wise softmax of the `length x length` `scores ⊙ factors + shifts` in place.
    private func softmax(_ s: UnsafeMutablePointer<Float>, length: Int, factors: UnsafePointer<Float>, shifts: UnsafePointer<Float>) {
        for row in stride(from: 0, to: length * length, by: length) { _ = graft_softmax(s + row, factors, shifts, 1, length) }
    }

    /// `dS = scale · p ⊙ (dP - rowsum(dP ⊙ p))` in place of `dP`.
    private func softmaxBackward(_ d: UnsafeMutablePointer<Float>, length: Int, probabilities p: UnsafePointer<Float>) {
        for row in stride(from: 0, to: length * length, by: length) { graft_softmax_backward(d + row, p + row, scale, length) }
    }
}

/// `count` floats left unset, for buffers whose every element a GEMM writes (with `beta = 0`).
private func unset(_ count: Int) -> [Float] {
    [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
