import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One animal of the Zoo data set (UCI, as shipped in R's `mlbench`): its
/// name, its 16 attributes and its class. A line of `zoo.jsonl`:
/// `{"animal":"aardvark","concepts":{"hair":1,...,"legs":4,...,"catsize":1},"label":"mammal"}`.
public struct ZooAnimal: Codable, Equatable, Sendable {
    /// The row name in R, unique: the two frogs are `frog.1` and `frog.2`.
    public let animal: String
    /// The attributes by name: 0 or 1, except `legs`, a count.
    public let concepts: [String: Int]
    /// One of `ZooAnimal.classes`.
    public let label: String

    /// An animal with its row name, attribute values by name and class.
    public init(animal: String, concepts: [String: Int], label: String) {
        self.animal = animal
        self.concepts = concepts
        self.label = label
    }

    /// The attributes in the data frame's column order.
    public static let attributes = ["hair", "feathers", "eggs", "milk", "airborne", "aquatic", "predator", "toothed",
                                    "backbone", "breathes", "venomous", "fins", "legs", "tail", "domestic", "catsize"]
    /// The classes in the order of R's factor levels.
    public static let classes = ["mammal", "bird", "reptile", "fish", "amphibian", "insect", "mollusc.et.al"]
    /// The leg counts that occur; `legs` becomes one binary concept per count.
    public static let legCounts = [0, 2, 4, 5, 6, 8]

    /// The binary concepts: every attribute but `legs` as it is, and `legs` as
    /// one concept per count (`legs=0`, ..., `legs=8`, exactly one of them 1),
    /// in attribute order: 21 concepts.
    public static let conceptNames: [String] = attributes.flatMap { name in
        name == "legs" ? legCounts.map { "legs=\($0)" } : [name]
    }

    /// The concepts of each attribute (indices into `conceptNames`): 16 groups,
    /// `legs` the only one with more than one member. Interventions give whole groups.
    public static let conceptGroups: [(attribute: String, concepts: [Int])] = {
        var next = 0
        return attributes.map { name in
            let size = name == "legs" ? legCounts.count : 1
            defer { next += size }
            return (name, Array(next..<(next + size)))
        }
    }()

    /// The name without R's uniqueness suffix (`frog.1` -> `frog`).
    public var name: String {
        guard let dot = animal.lastIndex(of: "."), !animal[animal.index(after: dot)...].isEmpty,
              animal[animal.index(after: dot)...].allSatisfy(\.isNumber) else { return animal }
        return String(animal[..<dot])
    }

    /// The 21 binary concepts in `conceptNames` order.
    public var binaryConcepts: [Float] {
        Self.attributes.flatMap { name in
            let value = concepts[name] ?? 0
            return name == "legs" ? Self.legCounts.map { $0 == value ? 1 : 0 } : [Float(value)]
        }
    }

    /// The class index in `classes`.
    public var classIndex: Int { Self.classes.firstIndex(of: label) ?? -1 }

    /// Throws unless the record has exactly the 16 attributes with valid values and a known class.
    func validate(source: String, line: Int) throws {
        let names = Set(concepts.keys)
        guard names == Set(Self.attributes) else {
            throw DataError.malformedLine(path: source, line: line, reason:
                "\(animal): expected the attributes \(Self.attributes.joined(separator: ", ")), found \(concepts.keys.sorted().joined(separator: ", "))")
        }
        for (name, value) in concepts where !(name == "legs" ? Self.legCounts.contains(value) : [0, 1].contains(value)) {
            throw DataError.malformedLine(path: source, line: line, reason:
                "\(animal): attribute \(name) is \(value); expected \(name == "legs" ? "one of \(Self.legCounts)" : "0 or 1")")
        }
        guard Self.classes.contains(label) else {
            throw DataError.unknownLabel(path: source, line: line, label: label, expected: Self.classes)
        }
    }

    /// The animals of a prepared `zoo.jsonl`, checked.
    /// - Throws: ``DataError`` naming the line that is malformed or has an unknown attribute value or class.
    public static func read(from path: String) throws -> [ZooAnimal] {
        let records = try JSONLines.readNumbered(ZooAnimal.self, from: path)
        for (line, record) in records { try record.validate(source: path, line: line) }
        return records.map(\.record)
    }

    /// `N animals, K binary concepts` and the animals per class.
    public static func statistics(_ animals: [ZooAnimal]) -> String {
        let counts = classes.map { label in "\(label) \(animals.count(where: { $0.label == label }))" }
        return "\(animals.count) animals, \(attributes.count) attributes (\(conceptNames.count) binary concepts); "
            + counts.joined(separator: ", ")
    }
}

extension ZooAnimal: JSONLineRepresentable {
    /// The record with its attributes in column order.
    public var jsonLine: String {
        let attributes = Self.attributes.map { "\(jsonString($0)):\(concepts[$0] ?? 0)" }.joined(separator: ",")
        return #"{"animal":\#(jsonString(animal)),"concepts":{\#(attributes)},"label":\#(jsonString(label))}"#
    }
}

/// The `zoo` recipe (see `Datasets/README.md`): Debian's `r-cran-mlbench`
/// (`apt-get download`, unpacked by `dpkg-deb -x`) ships `Zoo.rda`; pip's
/// `rdata` (installed with its dependencies into the cache, not into the
/// user's Python) converts it, and the result is checked and written as JSON Lines.
enum ZooRecipe {
    /// The data file inside the Debian package, and its SHA-256 (`Datasets/recipes.json`).
    static let (dataFile, dataSHA256) = RecipeSources.shared.files(of: "r-cran-mlbench").first!
    /// The converter: pip `rdata`, its version and wheel (`Datasets/recipes.json`).
    static let rdata = RecipeSources.shared.wheel("rdata")

    /// Reads the data frame `Zoo` (argument 1) and prints its row names, columns and classes as JSON.
    static let converter = """
        import json, sys, warnings
        warnings.simplefilter("ignore")
        import rdata
        frame = rdata.read_rda(sys.argv[1])["Zoo"]
        print(json.dumps({
            "animals": [str(name) for name in frame.index],
            "columns": {str(c): [int(v) for v in frame[c]] for c in frame.columns if c != "type"},
            "types": [str(t) for t in frame["type"]],
        }))
        """

    struct Converted: Decodable {
        let animals: [String]
        let columns: [String: [Int]]
        let types: [String]
    }

    /// Fetches, converts and checks the 101 animals.
    static func animals(cache: DataCache, log: (String) -> Void) throws -> [ZooAnimal] {
        let rda = try unpackMlbench(cache: cache, log: log) + "/" + dataFile
        let found = try sha256(of: rda)
        guard found == dataSHA256 else { throw DataError.checksumMismatch(path: rda, expected: dataSHA256, found: found) }
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = try installRdata(cache: cache, log: log)
        let output = try runCommand(["python3", "-c", converter, rda], captureOutput: true, environment: environment)
        let converted: Converted
        do {
            converted = try JSONDecoder().decode(Converted.self, from: output)
        } catch {
            throw DataError.unexpectedContent(path: rda, reason: "the converter's output is not the expected JSON: \(error)")
        }
        let n = converted.animals.count
        guard n == 101, converted.types.count == n, Set(converted.columns.keys) == Set(ZooAnimal.attributes),
              converted.columns.values.allSatisfy({ $0.count == n }) else {
            throw DataError.unexpectedContent(path: rda, reason: "expected 101 animals with the attributes \(ZooAnimal.attributes.joined(separator: ", ")) "
                + "and a type, found \(n) animals, \(converted.types.count) types and columns \(converted.columns.keys.sorted())")
        }
        let animals = converted.animals.indices.map { row in
            ZooAnimal(animal: converted.animals[row], concepts: converted.columns.mapValues { $0[row] }, label: converted.types[row])
        }
        for (row, animal) in animals.enumerated() { try animal.validate(source: rda, line: row + 1) }
        return animals
    }

    /// `raw/r-cran-mlbench`: the Debian package fetched with `apt-get download`
    /// into `debs/` (after `apt-get update` if that fails) unless one is there, and
    /// unpacked, unless already there.
    private static func unpackMlbench(cache: DataCache, log: (String) -> Void) throws -> String {
        let fileManager = FileManager.default
        let directory = cache.root + "/raw/r-cran-mlbench"
        if fileManager.fileExists(atPath: directory) { return directory }
        let downloads = cache.root + "/debs"
        for folder in [downloads, cache.root + "/raw"] { try fileManager.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        func downloaded() throws -> String? {
            try fileManager.contentsOfDirectory(atPath: downloads).sorted().last { $0.hasPrefix("r-cran-mlbench_") && $0.hasSuffix(".deb") }
        }
        if try downloaded() == nil {
            // apt-get download writes into the working directory, passed as $0.
            let download = ["sh", "-c", "cd \"$0\" && apt-get download r-cran-mlbench", downloads]
            log("zoo: downloading Debian package r-cran-mlbench into \(downloads)")
            do {
                try runCommand(download)
            } catch {
                log("zoo: apt-get download failed; updating the package lists and trying again")
                try runCommand((geteuid() == 0 ? [] : ["sudo"]) + ["apt-get", "update"])
                try runCommand(download)
            }
        }
        guard let deb = try downloaded() else { throw DataError.missingFile(path: downloads + "/r-cran-mlbench_*.deb") }
        let partial = directory + ".partial"
        if fileManager.fileExists(atPath: partial) { try fileManager.removeItem(atPath: partial) }
        try runCommand(["dpkg-deb", "-x", "\(downloads)/\(deb)", partial])
        try fileManager.moveItem(atPath: partial, toPath: directory)
        log("zoo: unpacked \(deb) into \(directory)")
        return directory
    }

    /// `raw/rdata-1.1.0`: the checked rdata wheel installed with its
    /// dependencies by `pip install --target`, unless already there.
    private static func installRdata(cache: DataCache, log: (String) -> Void) throws -> String {
        let fileManager = FileManager.default
        let directory = "\(cache.root)/raw/rdata-\(rdata.version)"
        if fileManager.fileExists(atPath: directory) { return directory }
        let wheels = cache.root + "/wheels", wheel = "\(cache.root)/wheels/\(rdata.wheel)"
        if !fileManager.fileExists(atPath: wheel) {
            log("zoo: downloading rdata==\(rdata.version) into \(wheels)")
            try runCommand(["python3", "-m", "pip", "download", "--no-deps", "rdata==\(rdata.version)", "-d", wheels])
        }
        let found = try sha256(of: wheel)
        guard found == rdata.sha256 else { throw DataError.checksumMismatch(path: wheel, expected: rdata.sha256, found: found) }
        let partial = directory + ".partial"
        if fileManager.fileExists(atPath: partial) { try fileManager.removeItem(atPath: partial) }
        log("zoo: installing \(rdata.wheel) and its dependencies (numpy, pandas, xarray) into \(directory)")
        try runCommand(["python3", "-m", "pip", "install", "--quiet", "--no-warn-conflicts", "--target", partial, wheel])
        try fileManager.moveItem(atPath: partial, toPath: directory)
        return directory
    }
}
