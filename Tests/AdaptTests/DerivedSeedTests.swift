@testable import adapt
import Testing

/// `derivedSeed` gives the language adapter (`adapt mlm`) and the task adapter (`adapt train`) streams of their
/// own, so a task adapter trained with the same `--seed` on Stack(language, task) does not start from the
/// language adapter's initial weights (Docs/stacking.md).
@Suite struct DerivedSeedTests {
    @Test func purposesAndSeedsGetStreamsOfTheirOwn() {
        for seed: UInt64 in [0, 1, 2, 42, .max] {
            #expect(derivedSeed(seed, "task") != derivedSeed(seed, "language"))
            #expect(derivedSeed(seed, "task") != seed)
            #expect(derivedSeed(seed, "task") == derivedSeed(seed, "task"))
        }
        #expect(Set([0, 1, 2].map { derivedSeed($0, "task") }).count == 3)
    }
}
