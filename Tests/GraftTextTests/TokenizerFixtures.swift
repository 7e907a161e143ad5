import Foundation
import Testing

/// One line of a tokenizer fixture (`unigram_expected.jsonl`, `wordpiece_expected.jsonl`):
/// the reference implementation's ids for `text`, cut to `maxLength` if given.
struct TokenizerFixtureCase: Decodable {
    let text: String
    let maxLength: Int?
    let ids: [Int]

    enum CodingKeys: String, CodingKey {
        case text, ids
        case maxLength = "max_length"
    }

    /// Every case of the fixture file `Fixtures/NAME.jsonl`.
    static func load(_ name: String) throws -> [TokenizerFixtureCase] {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/\(name)", withExtension: "jsonl"))
        let lines = try Data(contentsOf: url).split(separator: UInt8(ascii: "\n"))
        return try lines.map { try JSONDecoder().decode(TokenizerFixtureCase.self, from: Data($0)) }
    }
}

/// Fails the calling test, naming the fetch script, if a cached model file is missing.
func requireCached(_ path: String) throws {
    try #require(FileManager.default.fileExists(atPath: path), "missing \(path): run Scripts/fetch-models.sh")
}
