import Foundation
import GraftData
import GraftTensor
import GraftText

/// Texts for masked-LM training, read from a prepared dataset name
/// (`chichewa-bible`, `english-bible`) or a file: `.jsonl` with a `text`
/// field per line, or plain text with one text per line.
///
/// Bible corpora train on the verses that no genre set evaluates on: chapters
/// in the training split of the chapter split (``Genre/chapterSplits(seed:)``)
/// and outside the dev and test books of the book split (``Genre/bookSplits(seed:)``),
/// so a language adapter never sees the text its downstream tasks are tested on.
/// Held-out texts: for Bible corpora, the verses of the chapter split's test
/// chapters; for other files, every tenth line (the rest train).
public struct TextCorpus: Sendable {
    /// The texts masked-LM training runs on.
    public let train: [String]
    /// The texts held out for evaluation (masked-LM loss and pseudo-perplexity).
    public let heldOut: [String]

    /// A corpus of the given training and held-out texts.
    public init(train: [String], heldOut: [String]) {
        self.train = train
        self.heldOut = heldOut
    }

    /// Loads a corpus; prepared datasets must have been prepared (`adapt data prepare NAME`).
    public static func load(_ source: String, cache: DataCache = DataCache()) throws -> TextCorpus {
        if let recipe = DataRecipe(rawValue: source) {
            guard recipe == .chichewaBible || recipe == .englishBible else {
                throw DataError.unexpectedContent(path: source, reason: "\(source) is not a text corpus; use chichewa-bible or english-bible")
            }
            let (train, held) = split(try bibleVerses(recipe, cache: cache)) { $0 }
            return try checked(TextCorpus(train: train.map(\.text), heldOut: held.map(\.text)), source: source)
        }
        guard FileManager.default.fileExists(atPath: source) else { throw DataError.missingFile(path: source) }
        let texts: [String]
        if source.hasSuffix(".jsonl") {
            struct Line: Decodable { let text: String }
            texts = try JSONLines.read(Line.self, from: source).map(\.text)
        } else {
            texts = String(decoding: try Data(contentsOf: URL(fileURLWithPath: source)), as: UTF8.self)
                .split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        }
        let indexed = Array(texts.enumerated())
        return try checked(TextCorpus(train: indexed.filter { $0.offset % 10 != 9 }.map(\.element),
                                      heldOut: indexed.filter { $0.offset % 10 == 9 }.map(\.element)), source: source)
    }

    /// A Bible corpus beside its translation in another prepared Bible (`chichewa-bible`,
    /// `english-bible`): the verses both have, joined by book, chapter and verse and split as
    /// ``load(_:cache:)`` splits them, with `translations.train[i]` the translation of
    /// `texts.train[i]` (and alike for the held-out texts).
    public static func loadParallel(_ source: String, translations: String,
                                    cache: DataCache = DataCache()) throws -> (texts: TextCorpus, translations: TextCorpus) {
        func bible(_ name: String) throws -> DataRecipe {
            guard let recipe = DataRecipe(rawValue: name), recipe == .chichewaBible || recipe == .englishBible else {
                throw DataError.unexpectedContent(path: name, reason: "translations are joined by verse: use chichewa-bible or english-bible")
            }
            return recipe
        }
        let (recipe, translationRecipe) = (try bible(source), try bible(translations))
        let pairs = parallelVerses(try bibleVerses(recipe, cache: cache), try bibleVerses(translationRecipe, cache: cache))
        let (train, held) = split(pairs) { $0.text }
        let texts = try checked(TextCorpus(train: train.map(\.text.text), heldOut: held.map(\.text.text)), source: source)
        return (texts, TextCorpus(train: train.map(\.translation.text), heldOut: held.map(\.translation.text)))
    }

    /// The verses of `verses` that `translations` also has, each with its translation, in `verses`' order.
    static func parallelVerses(_ verses: [Verse], _ translations: [Verse]) -> [(text: Verse, translation: Verse)] {
        var byKey: [VerseKey: Verse] = [:]
        for verse in translations { byKey[VerseKey(verse)] = verse }
        return verses.compactMap { verse in byKey[VerseKey(verse)].map { (verse, $0) } }
    }

    /// A verse's place: book, chapter and verse number.
    private struct VerseKey: Hashable {
        let book, chapter, verse: Int
        init(_ verse: Verse) { (book, chapter, self.verse) = (verse.book, verse.chapter, verse.verse) }
    }

    /// A prepared Bible's verses.
    private static func bibleVerses(_ recipe: DataRecipe, cache: DataCache) throws -> [Verse] {
        guard try cache.isPrepared(recipe) else {
            throw DataError.missingFile(path: cache.path(of: recipe) + " (run: adapt data prepare \(recipe.rawValue))")
        }
        return try JSONLines.read(Verse.self, from: cache.path(of: recipe))
    }

    /// Training verses (training chapters outside the book split's dev and test books) and held-out
    /// verses (the chapter split's test chapters).
    private static func split<Item>(_ items: [Item], verse: (Item) -> Verse) -> (train: [Item], heldOut: [Item]) {
        let (chapters, books) = (Genre.chapterSplits(), Genre.bookSplits())
        func chapterSplit(_ item: Item) -> DataSplit? { chapters[BibleChapter(book: verse(item).book, chapter: verse(item).chapter)] }
        let held = items.filter { chapterSplit($0) == .test }
        let train = items.filter { chapterSplit($0) == .train && (books[verse($0).book] ?? .train) == .train }
        return (train, held)
    }

    private static func checked(_ corpus: TextCorpus, source: String) throws -> TextCorpus {
        guard !corpus.train.isEmpty else { throw DataError.emptyDataset(path: source) }
        return corpus
    }
}

extension Array {
    /// A deterministic sample of at most `count` elements (all of them, in a
    /// seeded random order, if `count` is nil or too large).
    public func sample(_ count: Int?, seed: UInt64) -> [Element] {
        var generator = SplitMix64(seed: seed)
        var copy = self
        for i in stride(from: copy.count - 1, to: 0, by: -1) {
            copy.swapAt(i, Int(generator.next() % UInt64(i + 1)))
        }
        return Array(copy.prefix(count ?? copy.count))
    }
}
