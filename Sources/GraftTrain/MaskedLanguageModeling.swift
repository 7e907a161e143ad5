import GraftAutodiff
import GraftTensor
import GraftData
import GraftText

/// BERT's masked-LM corruption, as Hugging Face's `DataCollatorForLanguageModeling`:
/// each non-special token is selected with probability `probability` (15%);
/// a selected token becomes the mask token 80% of the time, a random id 10%,
/// and stays unchanged 10%. Only selected tokens carry a label.
public struct MaskedLanguageModeling: Sendable {
    /// The chance that a non-special token is selected (0.15 by default).
    public var probability: Float
    /// The id 80% of the selected tokens become (the tokenizer's `<mask>` / `[MASK]`).
    public let maskID: Int
    /// The random replacements (10% of the selected tokens) are drawn uniformly from `0..<vocabularySize`.
    public let vocabularySize: Int
    /// The ids never selected: the tokenizer's framing and padding ids.
    public let specialIDs: Set<Int>

    /// The corruption for `tokenizer`'s mask id, vocabulary and special ids, selecting
    /// each token with `probability`.
    public init(tokenizer: any Tokenizer, probability: Float = 0.15) {
        self.probability = probability
        maskID = tokenizer.maskID
        vocabularySize = tokenizer.vocabularySize
        specialIDs = tokenizer.specialIDs
    }

    /// Corrupts `ids` in place and returns the labels: the original id where a
    /// token was selected, `Variable.ignoreIndex` elsewhere.
    public func corrupt(_ ids: inout [Int], generator: inout SeededGenerator) -> [Int] {
        var labels = [Int](repeating: Variable.ignoreIndex, count: ids.count)
        for i in ids.indices where !specialIDs.contains(ids[i]) && generator.nextUnitFloat() < probability {
            labels[i] = ids[i]
            let choice = generator.nextUnitFloat()
            if choice < 0.8 {
                ids[i] = maskID
            } else if choice < 0.9 {
                ids[i] = Int(generator.next() % UInt64(vocabularySize))
            }
        }
        return labels
    }
}

/// Splits example indices into batches of similar length (less padding): the
/// examples are shuffled by `seed`, cut into pools of `batchSize * poolFactor`,
/// each pool is sorted by length and cut into batches, and the batches are shuffled.
public func lengthBucketedBatches(lengths: [Int], batchSize: Int, seed: UInt64, poolFactor: Int = 50) -> [[Int]] {
    var generator = SeededGenerator(seed: seed)
    var order = Array(lengths.indices)
    order.shuffle(using: &generator)
    var batches: [[Int]] = []
    let pool = batchSize * poolFactor
    for start in stride(from: 0, to: order.count, by: pool) {
        let sorted = order[start..<min(start + pool, order.count)].sorted { lengths[$0] < lengths[$1] }
        for batchStart in stride(from: 0, to: sorted.count, by: batchSize) {
            batches.append(Array(sorted[batchStart..<min(batchStart + batchSize, sorted.count)]))
        }
    }
    batches.shuffle(using: &generator)
    return batches
}
