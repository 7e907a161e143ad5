import Foundation
import Testing
@testable import GraftData

@Suite struct ZooConceptDataTests {
    static let aardvark = ZooAnimal(animal: "aardvark", concepts: Dictionary(uniqueKeysWithValues: ZooAnimal.attributes.map {
        ($0, $0 == "legs" ? 4 : ["hair", "milk", "catsize"].contains($0) ? 1 : 0)
    }), label: "mammal")

    @Test func legsBecomeOneConceptPerCountInItsOwnGroup() {
        #expect(ZooAnimal.conceptNames.count == 21 && ZooAnimal.conceptGroups.count == 16)
        let legs = ZooAnimal.conceptGroups.first { $0.attribute == "legs" }!.concepts
        #expect(legs.map { ZooAnimal.conceptNames[$0] } == ["legs=0", "legs=2", "legs=4", "legs=5", "legs=6", "legs=8"])
        let concepts = Self.aardvark.binaryConcepts
        #expect(legs.map { concepts[$0] } == [0, 0, 1, 0, 0, 0] && concepts.reduce(0, +) == 4)
        #expect(ZooAnimal(animal: "frog.2", concepts: [:], label: "amphibian").name == "frog")
        #expect(Self.aardvark.name == "aardvark" && Self.aardvark.classIndex == 0)
    }

    @Test func readingWritesBackAndChecksValues() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("graft-zoo-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try JSONLines.write([Self.aardvark], to: path)
        #expect(try ZooAnimal.read(from: path) == [Self.aardvark])
        let line = Self.aardvark.jsonLine
        #expect(line.hasPrefix(#"{"animal":"aardvark","concepts":{"hair":1,"feathers":0,"#) && line.hasSuffix(#""label":"mammal"}"#))

        try Data((line.replacingOccurrences(of: #""legs":4"#, with: #""legs":3"#) + "\n").utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError.malformedLine(path: path, line: 1, reason: "aardvark: attribute legs is 3; expected one of [0, 2, 4, 5, 6, 8]")) {
            try ZooAnimal.read(from: path)
        }
        try Data((line.replacingOccurrences(of: "mammal", with: "dragon") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: DataError.unknownLabel(path: path, line: 1, label: "dragon", expected: ZooAnimal.classes)) {
            try ZooAnimal.read(from: path)
        }
    }
}
