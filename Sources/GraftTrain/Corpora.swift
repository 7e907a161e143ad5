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
    public let train: [String]
    public let heldOut: [String]

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
            guard try cache.isPrepared(recipe) else { throw DataError.missingFile(path: cache.path(of: recipe) + " (run: adapt data prepare \(source))") }
            let verses = try JSONLines.read(Verse.self, from: cache.path(of: recipe))
            let (chapters, books) = (Genre.chapterSplits(), Genre.bookSplits())
            let held = verses.filter { chapters[BibleChapter(book: $0.book, chapter: $0.chapter)] == .test }
            let train = verses.filter {
                chapters[BibleChapter(book: $0.book, chapter: $0.chapter)] == .train && (books[$0.book] ?? .train) == .train
            }
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
