import GraftTensor

/// A book of the 66-book Protestant canon, in canonical order.
public struct BibleBook: Equatable, Sendable {
    /// 1 (Genesis) through 66 (Revelation).
    public let number: Int
    /// The English name.
    public let name: String
    /// The abbreviation Debian's `bible` program (bible-kjv) prints: `Ge`, `Exo`, ..., `Rev`.
    public let kjvAbbreviation: String
    /// The number of chapters (the same in the KJV and the Chichewa Bible).
    public let chapters: Int

    /// The 66 books; `canon[n - 1]` is book `n`.
    public static let canon: [BibleBook] = {
        let table: [(String, String, Int)] = [
            ("Genesis", "Ge", 50), ("Exodus", "Exo", 40), ("Leviticus", "Lev", 27), ("Numbers", "Num", 36),
            ("Deuteronomy", "Deu", 34), ("Joshua", "Josh", 24), ("Judges", "Jdgs", 21), ("Ruth", "Ruth", 4),
            ("1 Samuel", "1Sm", 31), ("2 Samuel", "2Sm", 24), ("1 Kings", "1Ki", 22), ("2 Kings", "2Ki", 25),
            ("1 Chronicles", "1Chr", 29), ("2 Chronicles", "2Chr", 36), ("Ezra", "Ezra", 10),
            ("Nehemiah", "Neh", 13), ("Esther", "Est", 10), ("Job", "Job", 42), ("Psalms", "Psa", 150),
            ("Proverbs", "Prv", 31), ("Ecclesiastes", "Eccl", 12), ("Song of Solomon", "SSol", 8),
            ("Isaiah", "Isa", 66), ("Jeremiah", "Jer", 52), ("Lamentations", "Lam", 5), ("Ezekiel", "Eze", 48),
            ("Daniel", "Dan", 12), ("Hosea", "Hos", 14), ("Joel", "Joel", 3), ("Amos", "Amos", 9),
            ("Obadiah", "Obad", 1), ("Jonah", "Jonah", 4), ("Micah", "Mic", 7), ("Nahum", "Nahum", 3),
            ("Habakkuk", "Hab", 3), ("Zephaniah", "Zep", 3), ("Haggai", "Hag", 2), ("Zechariah", "Zec", 14),
            ("Malachi", "Mal", 4), ("Matthew", "Mat", 28), ("Mark", "Mark", 16), ("Luke", "Luke", 24),
            ("John", "John", 21), ("Acts", "Acts", 28), ("Romans", "Rom", 16), ("1 Corinthians", "1Cor", 16),
            ("2 Corinthians", "2Cor", 13), ("Galatians", "Gal", 6), ("Ephesians", "Eph", 6),
            ("Philippians", "Phi", 4), ("Colossians", "Col", 4), ("1 Thessalonians", "1Th", 5),
            ("2 Thessalonians", "2Th", 3), ("1 Timothy", "1Tim", 6), ("2 Timothy", "2Tim", 4),
            ("Titus", "Titus", 3), ("Philemon", "Phmn", 1), ("Hebrews", "Heb", 13), ("James", "Jas", 5),
            ("1 Peter", "1Pet", 5), ("2 Peter", "2Pet", 3), ("1 John", "1Jn", 5), ("2 John", "2Jn", 1),
            ("3 John", "3Jn", 1), ("Jude", "Jude", 1), ("Revelation", "Rev", 22),
        ]
        return table.enumerated().map { BibleBook(number: $0 + 1, name: $1.0, kjvAbbreviation: $1.1, chapters: $1.2) }
    }()
}

/// One chapter of one book, the unit the genre datasets are split by.
public struct BibleChapter: Hashable, Sendable {
    /// The book, 1...66.
    public let book: Int
    /// The chapter, from 1.
    public let chapter: Int

    /// Chapter `chapter` of book `book`.
    public init(book: Int, chapter: Int) {
        self.book = book
        self.chapter = chapter
    }
}

/// One verse of a verse-aligned Bible corpus: a line
/// `{"book": 1..66, "chapter": c, "verse": v, "text": "..."}` of its JSONL file.
public struct Verse: Codable, Equatable, Sendable {
    /// The book, 1...66 in canonical order (``BibleBook/canon``).
    public var book: Int
    /// The chapter, from 1.
    public var chapter: Int
    /// The verse, from 1.
    public var verse: Int
    /// The verse's text (UTF-8, whitespace normalised by the recipes).
    public var text: String

    /// A verse at `book` `chapter`:`verse`.
    public init(book: Int, chapter: Int, verse: Int, text: String) {
        self.book = book
        self.chapter = chapter
        self.verse = verse
        self.text = text
    }
}

/// The 8 genres of the genre-classification task, each a run of canonical books.
public enum Genre: String, CaseIterable, Codable, Sendable {
    /// The genres in canonical order of their books (see ``books``).
    case law, history, wisdom, prophets, gospels, acts, epistles, revelation

    /// The books of the genre (`Datasets/recipes.json`): law 1-5, history 6-17, wisdom 18-22,
    /// prophets 23-39, gospels 40-43, acts 44, epistles 45-65, revelation 66.
    public var books: ClosedRange<Int> {
        guard let range = RecipeSources.shared.genres[rawValue], range.count == 2, range[0] <= range[1] else {
            preconditionFailure("Datasets/recipes.json has no book range for the genre \(rawValue)")
        }
        return range[0]...range[1]
    }

    /// The genre of book `book`, or nil outside 1...66.
    public init?(book: Int) {
        guard let genre = Genre.allCases.first(where: { $0.books.contains(book) }) else { return nil }
        self = genre
    }

    /// The split of every chapter of the canon: for each genre in declaration
    /// order (law, history, ..., revelation), its chapters in canonical order
    /// (book, then chapter) are split 80/10/10 by ``DataSplit/assign(count:using:)``,
    /// one `SplitMix64(seed:)` generator serving all genres in turn. Every verse
    /// of a chapter goes to the chapter's split, and each genre is represented in
    /// every split. The split depends only on the canon and the seed, so the
    /// Chichewa and English sets share it.
    public static func chapterSplits(seed: UInt64 = DataSplit.defaultSeed) -> [BibleChapter: DataSplit] {
        var generator = SplitMix64(seed: seed)
        var splits: [BibleChapter: DataSplit] = [:]
        for genre in Genre.allCases {
            let chapters = genre.books.flatMap { book in
                (1...BibleBook.canon[book - 1].chapters).map { BibleChapter(book: book, chapter: $0) }
            }
            for (chapter, split) in zip(chapters, DataSplit.assign(count: chapters.count, using: &generator)) {
                splits[chapter] = split
            }
        }
        return splits
    }

    /// The genres of the book split: those of at least four books (acts and
    /// revelation, one book each, cannot have unseen books in dev and test).
    public static let splittableByBook: [Genre] = allCases.filter { $0.books.count >= 4 }

    /// The split of every book of ``splittableByBook``'s genres, so that dev and
    /// test books never appear in training: for each such genre in declaration
    /// order, its books are split by ``DataSplit/assign(count:held:using:)`` with
    /// `max(1, (count + 5) / 10)` books each in dev and test (one `SplitMix64`
    /// generator serving all genres in turn). Law, wisdom and gospels hold out
    /// one book each for dev and test, history one, prophets and epistles two.
    public static func bookSplits(seed: UInt64 = DataSplit.defaultSeed) -> [Int: DataSplit] {
        var generator = SplitMix64(seed: seed)
        var splits: [Int: DataSplit] = [:]
        for genre in splittableByBook {
            let books = Array(genre.books)
            let held = Swift.max(1, (books.count + 5) / 10)
            for (book, split) in zip(books, DataSplit.assign(count: books.count, held: held, using: &generator)) {
                splits[book] = split
            }
        }
        return splits
    }

    /// What a genre set's dev and test examples are kept apart from training by.
    public enum SplitUnit: Sendable {
        /// Chapters (``chapterSplits(seed:)``): all 8 genres; dev and test are
        /// other chapters of the training books.
        case chapter
        /// Books (``bookSplits(seed:)``): the 6 genres of ``splittableByBook``;
        /// dev and test books are never seen in training. Verses of other books are dropped.
        case book
    }

    /// Labels each verse with its book's genre and its chapter's or book's split.
    /// - Throws: ``DataError/invalidReference(book:chapter:verse:)`` for a verse
    ///   outside the canon.
    public static func label(_ verses: [Verse], by unit: SplitUnit = .chapter,
                             seed: UInt64 = DataSplit.defaultSeed) throws -> [LabelledText] {
        let chapters = unit == .chapter ? chapterSplits(seed: seed) : [:]
        let books = unit == .book ? bookSplits(seed: seed) : [:]
        return try verses.compactMap { verse in
            guard let genre = Genre(book: verse.book), verse.chapter >= 1,
                  verse.chapter <= BibleBook.canon[verse.book - 1].chapters
            else { throw DataError.invalidReference(book: verse.book, chapter: verse.chapter, verse: verse.verse) }
            let split = unit == .chapter ? chapters[BibleChapter(book: verse.book, chapter: verse.chapter)] : books[verse.book]
            return split.map {
                LabelledText(text: verse.text, label: genre.rawValue, split: $0, book: verse.book, chapter: verse.chapter, verse: verse.verse)
            }
        }
    }
}

/// One labelled example of a text-classification set: a line
/// `{"text": "...", "label": "law", "split": "train", "book": 1, "chapter": 1, "verse": 1}`
/// of its JSONL file. `book`, `chapter` and `verse` locate a Bible verse and
/// are absent (nil) for other sources.
public struct LabelledText: Codable, Equatable, Sendable {
    /// The text to classify.
    public var text: String
    /// Its class (for the genre sets a ``Genre`` raw value).
    public var label: String
    /// The split it belongs to.
    public var split: DataSplit
    /// The verse's book, if the text is a Bible verse.
    public var book: Int?
    /// The verse's chapter, if the text is a Bible verse.
    public var chapter: Int?
    /// The verse's number, if the text is a Bible verse.
    public var verse: Int?

    /// An example; the verse location is optional.
    public init(text: String, label: String, split: DataSplit, book: Int? = nil, chapter: Int? = nil, verse: Int? = nil) {
        self.text = text
        self.label = label
        self.split = split
        self.book = book
        self.chapter = chapter
        self.verse = verse
    }
}
