import Foundation
import GraftData
import GraftText

/// Train, dev and test examples of a labelled task, tokenized.
public struct LabelledData<Example: Sendable>: Sendable {
    /// The class (or tag) names; an example's label is an index into them.
    public let labels: [String]
    /// The examples of each split, in a seeded random order (see ``SplitLimits``).
    public let train: [Example], dev: [Example], test: [Example]

    /// The examples of one split.
    public func split(_ split: DataSplit) -> [Example] {
        switch split {
        case .train: train
        case .dev: dev
        case .test: test
        }
    }
}

extension LabelledData where Example == SequenceExample {
    /// A text-classification set: a prepared name (`chichewa-genres`,
    /// `english-genres`) or a JSONL file of `{"text", "label", "split"}` lines.
    /// Labels come from the recipe, or from the training split of a file (in
    /// order of first appearance); a dev or test label that training never saw is an error.
    public static func load(_ source: String, tokenizer: any Tokenizer, maxLength: Int, limits: SplitLimits = SplitLimits(),
                            cache: DataCache = DataCache()) throws -> Self {
        let (path, known) = try resolve(source, cache: cache)
        guard known == nil || DataRecipe(rawValue: source)?.fileName.hasSuffix(".jsonl") == true else {
            throw DataError.unexpectedContent(path: source, reason: "\(source) is not a text-classification set")
        }
        let records = try LabelledText.read(from: path, labels: known)
        var labels = known ?? []
        if known == nil {
            for record in records where record.split == .train && !labels.contains(record.label) { labels.append(record.label) }
        }
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        if let unseen = records.firstIndex(where: { index[$0.label] == nil }) { // record i is line i + 1 (`LabelledText.read`)
            throw DataError.unknownLabel(path: path, line: unseen + 1, label: records[unseen].label, expected: labels)
        }
        func examples(_ split: DataSplit) -> [SequenceExample] {
            records.filter { $0.split == split }.sample(limits[split], seed: limits.seed(split)).map {
                SequenceExample(ids: tokenizer.encode($0.text, maxLength: maxLength), label: index[$0.label]!)
            }
        }
        let data = Self(labels: labels, train: examples(.train), dev: examples(.dev), test: examples(.test))
        guard !data.train.isEmpty else { throw DataError.emptyDataset(path: path) }
        return data
    }
}

extension LabelledData where Example == TokenExample {
    /// A tagging set: `turkish-pos` or a CoNLL-U file whose sentences carry a
    /// `# split = train|dev|test` comment. Tags are learned from the training split.
    public static func load(_ source: String, tokenizer: any Tokenizer, maxLength: Int, limits: SplitLimits = SplitLimits(),
                            cache: DataCache = DataCache()) throws -> Self {
        let (path, _) = try resolve(source, cache: cache)
        let sentences = try CoNLLU.read(from: path)
        var labels: [String] = []
        for sentence in sentences where sentence.split == .train {
            for token in sentence.tokens where !labels.contains(token.upos) { labels.append(token.upos) }
        }
        let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, $0) })
        for sentence in sentences {
            if let unseen = sentence.tokens.first(where: { index[$0.upos] == nil }) {
                throw DataError.unknownLabel(path: path, line: 0, label: unseen.upos, expected: labels) // CoNLL-U sentences keep no line
            }
        }
        func examples(_ split: DataSplit) -> [TokenExample] {
            sentences.filter { $0.split == split }.sample(limits[split], seed: limits.seed(split)).map {
                TokenExample(words: $0.tokens.map(\.form), tags: $0.tokens.map { index[$0.upos]! }, tokenizer: tokenizer, maxLength: maxLength)
            }
        }
        let data = Self(labels: labels, train: examples(.train), dev: examples(.dev), test: examples(.test))
        guard !data.train.isEmpty else { throw DataError.emptyDataset(path: path) }
        return data
    }
}

/// How many examples of each split to use (a seeded sample; `nil`: all),
/// drawn before tokenizing so that large sets load quickly.
public struct SplitLimits: Sendable {
    /// The most examples to take from each split; `nil` takes them all.
    public var train: Int?, dev: Int?, test: Int?
    /// Seeds the training sample; dev and test samples use fixed seeds so every run scores the same examples.
    public var seed: UInt64

    /// Limits for each split (default: none) and the training sample's seed (default 0).
    public init(train: Int? = nil, dev: Int? = nil, test: Int? = nil, seed: UInt64 = 0) {
        (self.train, self.dev, self.test, self.seed) = (train, dev, test, seed)
    }

    subscript(split: DataSplit) -> Int? {
        switch split {
        case .train: train
        case .dev: dev
        case .test: test
        }
    }

    func seed(_ split: DataSplit) -> UInt64 { split == .train ? seed : (split == .dev ? 1 : 2) }
}

/// The file behind a prepared name (which must be prepared) or a path, and the recipe's labels.
func resolve(_ source: String, cache: DataCache) throws -> (path: String, labels: [String]?) {
    if let recipe = DataRecipe(rawValue: source) {
        guard try cache.isPrepared(recipe) else {
            throw DataError.missingFile(path: cache.path(of: recipe) + " (run: adapt data prepare \(source))")
        }
        return (cache.path(of: recipe), recipe.labels)
    }
    guard FileManager.default.fileExists(atPath: source) else { throw DataError.missingFile(path: source) }
    return (source, nil)
}

extension TokenizedText {
    /// Every text of a text-classification set or a text corpus, tokenized, in
    /// the order and sample Graft trains on.
    ///
    /// A labelled set (`chichewa-genres`, `english-genres`, or a JSONL file whose
    /// first line has a `label`) gives what ``LabelledData/load(_:tokenizer:maxLength:limits:cache:)``
    /// gives `adapt train` with the same limits, each example with its label name.
    /// A corpus (`chichewa-bible`, `english-bible`, a `.txt` file or a JSONL file
    /// of `text` only) gives its training texts as `train` (sampled with
    /// `limits.seed`, as `adapt mlm --train-texts` does) and its held-out texts,
    /// which `adapt mlm` evaluates on, as `dev` (sampled as `--evaluation-texts` does), without labels.
    public static func load(_ source: String, tokenizer: any Tokenizer, maxLength: Int, limits: SplitLimits = SplitLimits(),
                            cache: DataCache = DataCache()) throws -> [TokenizedText] {
        if try isCorpus(source) {
            let corpus = try TextCorpus.load(source, cache: cache)
            return corpus.train.sample(limits.train, seed: limits.seed).map {
                TokenizedText(ids: tokenizer.encode($0, maxLength: maxLength), label: nil, split: .train)
            } + corpus.heldOut.sample(limits.dev, seed: limits.seed(.dev)).map {
                TokenizedText(ids: tokenizer.encode($0, maxLength: maxLength), label: nil, split: .dev)
            }
        }
        let data = try LabelledData<SequenceExample>.load(source, tokenizer: tokenizer, maxLength: maxLength, limits: limits, cache: cache)
        return DataSplit.allCases.flatMap { split in
            data.split(split).map { TokenizedText(ids: $0.ids, label: data.labels[$0.label], split: split) }
        }
    }

    /// Whether `source` is a text corpus rather than a labelled set (a prepared
    /// Bible, a file other than JSONL or CoNLL-U, or JSONL without a `label` on its first line).
    private static func isCorpus(_ source: String) throws -> Bool {
        if let recipe = DataRecipe(rawValue: source) { return recipe == .chichewaBible || recipe == .englishBible }
        guard source.hasSuffix(".jsonl") else { return !source.hasSuffix(".conllu") }
        guard FileManager.default.fileExists(atPath: source) else { throw DataError.missingFile(path: source) }
        let line = try Data(contentsOf: URL(fileURLWithPath: source), options: .alwaysMapped).prefix { $0 != 0x0A }
        let first = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
        return first?["label"] == nil
    }
}
