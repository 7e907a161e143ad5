import Foundation
import GraftData
import GraftTensor
import Testing

/// A fresh temporary directory, removed by `remove()`.
private struct TemporaryDirectory {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-corpus-\(UUID().uuidString)").path

    init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

    /// Writes `text` to `name` inside the directory and returns its path.
    func write(_ text: String, to name: String) throws -> String {
        let file = path + "/" + name
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        return file
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// One verse for every chapter of the canon, in order.
private func versePerChapter() -> [Verse] {
    BibleBook.canon.flatMap { book in
        (1...book.chapters).map { Verse(book: book.number, chapter: $0, verse: 1, text: "\(book.name) \($0)") }
    }
}

@Suite struct CorpusTests {
    @Test func genresCoverAll66BooksInCanonicalRuns() {
        let sizes: [(Genre, Int)] = [(.law, 5), (.history, 12), (.wisdom, 5), (.prophets, 17),
                                     (.gospels, 4), (.acts, 1), (.epistles, 21), (.revelation, 1)]
        let expected = sizes.flatMap { Array(repeating: $0.0, count: $0.1) }
        #expect(expected.count == 66)
        #expect((1...66).map { Genre(book: $0) } == expected)
        #expect(Genre(book: 0) == nil && Genre(book: 67) == nil)
        #expect(Genre(book: 40) == .gospels && Genre(book: 44) == .acts && Genre(book: 45) == .epistles)
        #expect(BibleBook.canon.count == 66 && BibleBook.canon.map(\.chapters).reduce(0, +) == 1_189)
        #expect(BibleBook.canon.enumerated().allSatisfy { $0.offset + 1 == $0.element.number })
    }

    @Test func splitMix64MatchesTheReferenceStream() {
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func assignmentIsEightyTenTenAndSeeded() {
        var first = SplitMix64(seed: 1), second = SplitMix64(seed: 1), other = SplitMix64(seed: 2)
        let splits = DataSplit.assign(count: 1_000, using: &first)
        #expect(splits == DataSplit.assign(count: 1_000, using: &second))
        #expect(splits != DataSplit.assign(count: 1_000, using: &other))
        #expect(DataSplit.allCases.map { split in splits.count(where: { $0 == split }) } == [800, 100, 100])
        #expect(DataSplit.assign(count: 22, using: &first).count(where: { $0 == .test }) == 2)
        #expect(DataSplit.assign(count: 1, using: &first) == [.train])
        #expect(DataSplit.assign(count: 0, using: &first).isEmpty)
    }

    @Test func chapterSplitIsDeterministicAndStratifiedByGenre() {
        let splits = Genre.chapterSplits()
        #expect(splits.count == 1_189)
        #expect(splits == Genre.chapterSplits(seed: DataSplit.defaultSeed))
        #expect(splits != Genre.chapterSplits(seed: 7))
        for genre in Genre.allCases {
            let chapters = splits.filter { genre.books.contains($0.key.book) }
            let held = (chapters.count + 5) / 10
            let counts = DataSplit.allCases.map { split in chapters.count(where: { $0.value == split }) }
            #expect(counts == [chapters.count - 2 * held, held, held], "\(genre)")
        }
    }

    @Test func bookSplitKeepsDevAndTestBooksOutOfTraining() throws {
        let splits = Genre.bookSplits()
        #expect(splits == Genre.bookSplits(seed: DataSplit.defaultSeed))
        #expect(splits != Genre.bookSplits(seed: 7))
        #expect(Genre.splittableByBook == [.law, .history, .wisdom, .prophets, .gospels, .epistles])
        #expect(Set(splits.keys) == Set(Genre.splittableByBook.flatMap { Array($0.books) }))
        for genre in Genre.splittableByBook {
            let held = max(1, (genre.books.count + 5) / 10)
            let counts = DataSplit.allCases.map { split in genre.books.count(where: { splits[$0] == split }) }
            #expect(counts == [genre.books.count - 2 * held, held, held], "\(genre)")
        }
        // Labelling by book: every verse of a book in one split; acts and revelation dropped.
        let verses = [(40, 1), (41, 2), (42, 3), (43, 4), (44, 1), (66, 2)].map { Verse(book: $0.0, chapter: $0.1, verse: 1, text: "") }
        let examples = try Genre.label(verses, by: .book)
        #expect(examples.map(\.book) == [40, 41, 42, 43])
        #expect(examples.allSatisfy { $0.label == "gospels" && $0.split == splits[$0.book!] })
        #expect(Set(examples.map(\.split)) == Set(DataSplit.allCases))
        #expect(DataRecipe.chichewaGenresByBook.labels == ["law", "history", "wisdom", "prophets", "gospels", "epistles"])
    }

    @Test func labellingPutsEveryVerseOfAChapterInOneSplit() throws {
        let verses = (1...4).flatMap { chapter in (1...5).map { Verse(book: 8, chapter: chapter, verse: $0, text: "Ruth") } }
            + (1...22).flatMap { chapter in (1...3).map { Verse(book: 66, chapter: chapter, verse: $0, text: "Rev") } }
        let examples = try Genre.label(verses)
        #expect(examples.count == verses.count)
        #expect(examples.allSatisfy { $0.label == ($0.book == 8 ? "history" : "revelation") })
        let byChapter = Dictionary(grouping: examples) { BibleChapter(book: $0.book ?? 0, chapter: $0.chapter ?? 0) }
        #expect(byChapter.count == 26)
        #expect(byChapter.values.allSatisfy { Set($0.map(\.split)).count == 1 })
        let splits = Genre.chapterSplits()
        #expect(examples.allSatisfy { $0.split == splits[BibleChapter(book: $0.book ?? 0, chapter: $0.chapter ?? 0)] })
        #expect(throws: DataError.invalidReference(book: 8, chapter: 5, verse: 1)) {
            try Genre.label([Verse(book: 8, chapter: 5, verse: 1, text: "")])
        }
    }

    @Test func jsonLinesRoundTripVersesAndLabelledTexts() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let verses = [Verse(book: 1, chapter: 1, verse: 1, text: "Pachiyambi Mulungu adalenga “kumwamba” ndi dziko"),
                      Verse(book: 66, chapter: 22, verse: 21, text: "quote \" back\\slash tab\t newline\n control\u{1} /")]
        let versePath = directory.path + "/data/verses.jsonl"
        try JSONLines.write(verses, to: versePath)
        #expect(try JSONLines.read(Verse.self, from: versePath) == verses)
        let firstLine = try String(contentsOfFile: versePath, encoding: .utf8).split(separator: "\n")[0]
        #expect(firstLine == #"{"book":1,"chapter":1,"verse":1,"text":"Pachiyambi Mulungu adalenga “kumwamba” ndi dziko"}"#)

        let examples = [LabelledText(text: "a", label: "law", split: .train, book: 1, chapter: 2, verse: 3),
                        LabelledText(text: "b", label: "acts", split: .test)]
        let examplePath = directory.path + "/labelled.jsonl"
        try JSONLines.write(examples, to: examplePath)
        #expect(try LabelledText.read(from: examplePath, labels: Genre.allCases.map(\.rawValue)) == examples)
        #expect(try String(contentsOfFile: examplePath, encoding: .utf8)
            == #"{"text":"a","label":"law","split":"train","book":1,"chapter":2,"verse":3}"# + "\n"
            + #"{"text":"b","label":"acts","split":"test"}"# + "\n")
    }

    @Test func malformedLinesNameFileAndLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let good = #"{"book":1,"chapter":1,"verse":1,"text":"x"}"#
        let cases = [(good + "\n{\"book\":1,", "invalid JSON"),
                     (good + "\n" + #"{"book":1,"chapter":1,"verse":1}"#, "missing field \"text\""),
                     (good + "\n" + #"{"book":"one","chapter":1,"verse":1,"text":"x"}"#, "field \"book\""),
                     (good + "\n\n" + good, "empty line")]
        for (text, reason) in cases {
            let path = try directory.write(text, to: "bad.jsonl")
            do {
                _ = try JSONLines.read(Verse.self, from: path)
                Issue.record("no error for \(text)")
            } catch let DataError.malformedLine(file, line, found) {
                #expect(file == path && line == 2)
                #expect(found.contains(reason), "\(found)")
                #expect("\(DataError.malformedLine(path: file, line: line, reason: found))".hasPrefix(path + ":2: "))
            }
        }
        let badSplit = try directory.write(#"{"text":"a","label":"law","split":"validation"}"#, to: "split.jsonl")
        let error = #expect(throws: DataError.self) { try LabelledText.read(from: badSplit) }
        guard case .malformedLine(badSplit, 1, let reason)? = error else {
            Issue.record("expected a malformed line 1, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("split"), "\(reason)")
    }

    @Test func emptyMissingAndUnknownLabelErrors() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let empty = try directory.write("", to: "empty.jsonl")
        #expect(throws: DataError.emptyDataset(path: empty)) { try JSONLines.read(Verse.self, from: empty) }
        let missing = directory.path + "/missing.jsonl"
        #expect(throws: DataError.missingFile(path: missing)) { try LabelledText.read(from: missing) }
        let labelled = try directory.write(#"{"text":"a","label":"law","split":"train"}"# + "\n"
            + #"{"text":"b","label":"poetry","split":"dev"}"# + "\n", to: "labels.jsonl")
        let labels = Genre.allCases.map(\.rawValue)
        #expect(throws: DataError.unknownLabel(path: labelled, line: 2, label: "poetry", expected: labels)) {
            try LabelledText.read(from: labelled, labels: labels)
        }
        #expect(try LabelledText.read(from: labelled).count == 2)
        let emptyConllu = try directory.write("\n\n", to: "empty.conllu")
        #expect(throws: DataError.emptyDataset(path: emptyConllu)) { try CoNLLU.read(from: emptyConllu) }
    }

    @Test func conlluKeepsWordsAndSkipsRangesEmptyNodesAndComments() throws {
        let rows = [
            "# sent_id = s1", "# text = Geldim, gittim.",
            "1-2\tGeldim,\t_\t_\t_\t_\t_\t_\t_\t_",
            "1\tGeldim\tgel\tVERB\tVB\t_\t0\troot\t_\tSpaceAfter=No",
            "2\t,\t,\tPUNCT\t,\t_\t1\tp\t_\t_",
            "2.1\tgit\t_\tVERB\t_\t_\t_\t_\t1:conj\t_",
            "3\tgittim\tgit\tVERB\tVB\t_\t1\tconj\t_\tSpaceAfter=No|Other=x",
            "4\t.\t.\tPUNCT\t.\t_\t1\tp\t_\t_",
            "", "", "# sent_id = s2",
            "1\tEvet\tevet\tINTJ\tINTJ\t_\t0\troot\t_\t_",
        ]
        let sentences = try CoNLLU.parse(rows.joined(separator: "\r\n"), path: "inline.conllu")
        #expect(sentences.count == 2)
        #expect(sentences[0].tokens == [CoNLLUToken(form: "Geldim", upos: "VERB", spaceAfter: false),
                                        CoNLLUToken(form: ",", upos: "PUNCT"),
                                        CoNLLUToken(form: "gittim", upos: "VERB", spaceAfter: false),
                                        CoNLLUToken(form: ".", upos: "PUNCT")])
        #expect(sentences[0].comments == ["sent_id = s1", "text = Geldim, gittim."])
        #expect(sentences[0].metadata("text") == "Geldim, gittim." && sentences[1].metadata("text") == nil)
        #expect(sentences[1].tokens == [CoNLLUToken(form: "Evet", upos: "INTJ")])

        var annotated = sentences
        annotated[0].comments.append("split = dev")
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/round.conllu"
        try CoNLLU.write(annotated, to: path)
        let reread = try CoNLLU.read(from: path)
        #expect(reread == annotated)
        #expect(reread.map(\.split) == [.dev, nil])
    }

    @Test func conlluErrorsNameTheLine() {
        #expect(throws: DataError.malformedLine(path: "x.conllu", line: 2, reason: "expected 10 tab-separated columns, found 4")) {
            try CoNLLU.parse("# c\n1\tA\t_\tNOUN\n", path: "x.conllu")
        }
        #expect(throws: DataError.malformedLine(path: "x.conllu", line: 2, reason: "expected word id 2, found \"3\"")) {
            try CoNLLU.parse("1\tA\t_\tNOUN\t_\t_\t_\t_\t_\t_\n3\tB\t_\tNOUN\t_\t_\t_\t_\t_\t_\n", path: "x.conllu")
        }
        #expect(throws: DataError.malformedLine(path: "x.conllu", line: 1, reason: "expected word lines after the comments, found none")) {
            try CoNLLU.parse("# lonely\n\n", path: "x.conllu")
        }
    }

    @Test func sentenceSplitsAreStratifiedAndSeeded() {
        let splits = CoNLLU.splits(groupSizes: [20, 10])
        #expect(splits == CoNLLU.splits(groupSizes: [20, 10], seed: DataSplit.defaultSeed))
        #expect(splits.map { group in DataSplit.allCases.map { split in group.count(where: { $0 == split }) } } == [[16, 2, 2], [8, 1, 1]])
    }

    @Test func kjvListingJoinsWrappedLinesAndChecksOrder() throws {
        let verses = versePerChapter()
        var lines = verses.map { "\(BibleBook.canon[$0.book - 1].kjvAbbreviation)\($0.chapter):1 \($0.text)" }
        lines[0] += "  and"
        lines.insert("   a wrapped\tcontinuation", at: 1)
        let parsed = try BibleSources.kjvVerses(listing: lines.joined(separator: "\n") + "\n", source: "listing")
        #expect(parsed.count == 1_189)
        #expect(parsed[0] == Verse(book: 1, chapter: 1, verse: 1, text: "Genesis 1 and a wrapped continuation"))
        #expect(parsed.dropFirst().elementsEqual(verses.dropFirst()))

        let swapped = [lines[2], lines[0]].joined(separator: "\n")
        let error = #expect(throws: DataError.self) { try BibleSources.kjvVerses(listing: swapped, source: "listing") }
        #expect(error?.description.hasPrefix("listing: expected Genesis 1:1 first, found Genesis 2:1") == true)
        #expect(throws: DataError.malformedLine(path: "listing", line: 1, reason: "unknown book abbreviation \"Gen\" in \"Gen1:1\"")) {
            try BibleSources.kjvVerses(listing: "Gen1:1 In the beginning", source: "listing")
        }
    }

    @Test func chichewaPackageLayoutIsRead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let books = BibleBook.canon.map { #"{ "name": "\#($0.name)", "chapters": \#($0.chapters) }"# }
        _ = try directory.write("[\n" + books.joined(separator: ",\n") + "\n]", to: "content/books.json")
        for verse in versePerChapter() {
            _ = try directory.write(#"["  \#(verse.text)  ", "second"]"#, to: "resources/\(verse.book)/\(verse.chapter).json")
        }
        let verses = try BibleSources.chichewaVerses(packageDirectory: directory.path)
        #expect(verses.count == 2 * 1_189)
        #expect(verses.prefix(2) == [Verse(book: 1, chapter: 1, verse: 1, text: "Genesis 1"),
                                     Verse(book: 1, chapter: 1, verse: 2, text: "second")])
        try FileManager.default.removeItem(atPath: directory.path + "/resources/66/22.json")
        #expect(throws: DataError.missingFile(path: directory.path + "/resources/66/22.json")) {
            try BibleSources.chichewaVerses(packageDirectory: directory.path)
        }
    }
}
