/// An endless, deterministic sequence of length-bucketed batches: epoch `e`
/// is `lengthBucketedBatches` with seed `seed + e`, so batch `i` of the run is
/// the same whether or not training was interrupted before it.
public final class EpochBatches {
    let lengths: [Int], batchSize: Int, seed: UInt64
    private var epoch = -1
    private var batches: [[Int]] = []
    /// Batches in one pass over the examples.
    public let batchesPerEpoch: Int

    /// Batches of `batchSize` examples of the given token `lengths`, epoch `e` drawn with
    /// seed `seed + e`.
    public init(lengths: [Int], batchSize: Int, seed: UInt64) {
        self.lengths = lengths
        self.batchSize = batchSize
        self.seed = seed
        batchesPerEpoch = lengthBucketedBatches(lengths: lengths, batchSize: batchSize, seed: seed).count
    }

    /// The example indices of the run's `index`-th batch.
    public func batch(_ index: Int) -> [Int] {
        let wanted = index / batchesPerEpoch
        if wanted != epoch {
            epoch = wanted
            batches = lengthBucketedBatches(lengths: lengths, batchSize: batchSize, seed: seed &+ UInt64(wanted))
        }
        return batches[index % batchesPerEpoch]
    }
}
