import GraftTensor

/// The part of a dataset an example belongs to.
public enum DataSplit: String, CaseIterable, Codable, Sendable {
    /// Training, development (validation) and held-out test examples.
    case train, dev, test

    /// The seed of every split Graft's data recipes make.
    public static let defaultSeed: UInt64 = RecipeSources.shared.splitSeed

    /// Assigns `count` items to train/dev/test, 80/10/10, returning each item's
    /// split in the items' order. The rule, exactly (so that other languages
    /// can reproduce it): start from the order `0..<count`; Fisher-Yates
    /// shuffle it with `for i in count-1 down to 1 { j = next() % (i + 1);
    /// swap(order[i], order[j]) }`; the dev and test sets each get
    /// `h = (count + 5) / 10` items (a tenth, rounded half up) and train the
    /// remaining `count - 2h`: the first `count - 2h` shuffled positions are
    /// train, the next `h` dev, the last `h` test.
    /// Several groups (strata) split with one generator, one after another,
    /// each get their own 80/10/10.
    public static func assign(count: Int, using generator: inout SplitMix64) -> [DataSplit] {
        assign(count: count, held: (count + 5) / 10, using: &generator)
    }

    /// Assigns `count` items as ``assign(count:using:)`` does, with `held` items
    /// each in dev and test (the last `held` shuffled positions test, the `held`
    /// before them dev) and the rest in train.
    public static func assign(count: Int, held: Int, using generator: inout SplitMix64) -> [DataSplit] {
        precondition(held >= 0 && 2 * held <= count, "DataSplit.assign: cannot hold out 2 x \(held) of \(count) items")
        var order = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(generator.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        var splits = [DataSplit](repeating: .train, count: count)
        for (position, item) in order.enumerated() where position >= count - 2 * held {
            splits[item] = position < count - held ? .dev : .test
        }
        return splits
    }
}
