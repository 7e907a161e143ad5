import GraftAutodiff
import GraftTensor
import GraftText

/// A subset of a model's vocabulary for a softmax to run over, such as the
/// tokens of a training corpus: a masked-LM decoder then scores only these
/// rows instead of all of them.
///
/// Restricted index `i` stands for token `ids[i]`.
public struct OutputVocabulary: Sendable, Equatable {
    /// The token ids, sorted and unique.
    public let ids: [Int]
    /// The size of the full vocabulary the ids are drawn from.
    public let fullSize: Int
    /// The restricted index of every full id, -1 for ids outside.
    private let restrictedIndex: [Int32]
    /// The ids of the full vocabulary that are not in this one, sorted.
    private let outsideIDs: [Int]

    /// The vocabulary of the given ids (duplicates removed), each in `0..<fullSize`.
    public init(ids: some Sequence<Int>, fullSize: Int) {
        let ids = Set(ids).sorted()
        precondition(ids.allSatisfy { $0 >= 0 && $0 < fullSize },
                     "OutputVocabulary: ids must lie in 0..<\(fullSize), got \(ids.first { $0 < 0 || $0 >= fullSize }!)")
        var restrictedIndex = [Int32](repeating: -1, count: fullSize)
        for (index, id) in ids.enumerated() { restrictedIndex[id] = Int32(index) }
        self.ids = ids
        self.fullSize = fullSize
        self.restrictedIndex = restrictedIndex
        outsideIDs = restrictedIndex.indices.filter { restrictedIndex[$0] < 0 }
    }

    /// The ids that occur in `texts`, with the tokenizer's special ids and its
    /// mask id, out of a decoder of `fullSize` rows.
    public init(covering texts: [[Int]], tokenizer: any Tokenizer, fullSize: Int) {
        var ids = tokenizer.specialIDs
        ids.insert(tokenizer.maskID)
        for text in texts { ids.formUnion(text) }
        self.init(ids: ids, fullSize: fullSize)
    }

    /// The number of tokens in the vocabulary.
    public var count: Int { ids.count }

    /// Whether full id `id` is in the vocabulary.
    public func contains(_ id: Int) -> Bool { id >= 0 && id < fullSize && restrictedIndex[id] >= 0 }

    /// The restricted index of each full id in `targets`; `ignoreIndex` stays as it is.
    /// A target outside the vocabulary is a programming error (it would have no logit).
    public func restrict(_ targets: [Int], ignoreIndex: Int = Variable.ignoreIndex) -> [Int] {
        targets.map { target in
            guard target != ignoreIndex else { return target }
            precondition(contains(target), "OutputVocabulary: target \(target) is not one of the \(count) ids of the output vocabulary")
            return Int(restrictedIndex[target])
        }
    }

    /// The number of ids of the full vocabulary outside this one.
    public var outsideCount: Int { outsideIDs.count }

    /// `count` distinct ids from outside the vocabulary, drawn uniformly (all of
    /// them if there are no more), in increasing order.
    public func sampleOutside(_ count: Int, generator: inout SeededGenerator) -> [Int] {
        let total = outsideIDs.count
        guard count < total else { return outsideIDs }
        // Floyd's algorithm: `count` distinct positions in 0..<total.
        var chosen = Set<Int>(minimumCapacity: count)
        for last in (total - count)..<total {
            let position = Int(generator.next() % UInt64(last + 1))
            chosen.insert(chosen.contains(position) ? last : position)
        }
        return chosen.sorted().map { outsideIDs[$0] }
    }

    /// The rows of `table` (`[fullSize, width]`, or `[fullSize]` for a bias) at
    /// `ids`, differentiably: the gradient is scattered back into those rows.
    public func gather(_ table: Variable) -> Variable { Self.rows(of: table, at: ids, fullSize: fullSize) }

    /// The rows of `table` at `ids` (the elements, for a 1-D table), differentiably.
    static func rows(of table: Variable, at ids: [Int], fullSize: Int) -> Variable {
        precondition(table.shape.first == fullSize, "OutputVocabulary: table \(table.shape) does not have \(fullSize) rows")
        guard table.value.rank == 1 else { return Variable.gatherRows(table, ids) }
        return Variable.gatherRows(table.reshaped([fullSize, 1]), ids).reshaped([ids.count])
    }
}

/// How well a tokenizer covers a corpus: how many of its text tokens (special
/// tokens not counted) are the unknown token.
public struct TokenizerCoverage: Sendable, Equatable {
    /// Text tokens (every id but the tokenizer's special ids).
    public let tokens: Int
    /// Text tokens that are the unknown token.
    public let unknown: Int

    /// Counts the text tokens of `texts` (ids from `tokenizer`) and how many are its unknown id.
    public init(texts: [[Int]], tokenizer: any Tokenizer) {
        let special = tokenizer.specialIDs
        var tokens = 0, unknown = 0
        for id in texts.joined() where !special.contains(id) {
            tokens += 1
            if id == tokenizer.unknownID { unknown += 1 }
        }
        self.tokens = tokens
        self.unknown = unknown
    }

    /// `unknown / tokens` (0 for no tokens).
    public var unknownFraction: Double { tokens == 0 ? 0 : Double(unknown) / Double(tokens) }
}
