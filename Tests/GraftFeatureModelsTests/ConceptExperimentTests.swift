import Foundation
import GraftTensor
import Testing
@testable import GraftFeatureModels

/// The cross-validation helpers of `adapt concepts`.
@Suite struct ConceptExperiment {
    @Test func foldsAreStratifiedAndCoverEveryExampleOnce() {
        let labels = (0..<23).map { $0 % 3 == 0 ? 0 : $0 % 3 == 1 ? 1 : 2 } + [2, 2]
        let folds = stratifiedFolds(labels: labels, classCount: 3, folds: 4, seed: 7)
        #expect(folds.flatMap { $0 }.sorted() == Array(labels.indices))
        #expect(folds.map(\.count).max()! - folds.map(\.count).min()! <= 1)
        for label in 0..<3 {
            let perFold = folds.map { fold in fold.count(where: { labels[$0] == label }) }
            #expect(perFold.max()! - perFold.min()! <= 1, "class \(label): \(perFold)")
        }
        #expect(folds == stratifiedFolds(labels: labels, classCount: 3, folds: 4, seed: 7))
        #expect(folds != stratifiedFolds(labels: labels, classCount: 3, folds: 4, seed: 8))
    }

    @Test func pooledStatisticsWeighFoldsByTheirSize() {
        func run(_ accuracy: Double, count: Int, repetition: Int) -> FoldRun {
            FoldRun(evaluation: ConceptEvaluation(conceptAccuracy: 0, classAccuracy: accuracy, interventionCurve: [accuracy, 1]),
                    count: count, repetition: repetition)
        }
        // Repetition 0: (1.0 * 3 + 0.0 * 1) / 4 = 0.75; repetition 1: 0.25. Mean 0.5, sample deviation 0.3536.
        let runs = [run(1, count: 3, repetition: 0), run(0, count: 1, repetition: 0), run(0, count: 3, repetition: 1), run(1, count: 1, repetition: 1)]
        let (mean, deviation) = pooled(runs, \.classAccuracy)
        #expect(abs(mean - 0.5) < 1e-12 && abs(deviation - 0.5.squareRoot() / 2) < 1e-12)
        let curve = pooledCurve(runs)
        #expect(curve.count == 2 && abs(curve[0].mean - 0.5) < 1e-12 && curve[1].mean == 1 && curve[1].deviation == 0)
    }

    @Test func candidatesAreTheConceptsOfMostMembers() throws {
        // Class 0: concept 0 in 2 of 3 members, concept 1 in 1 of 3; class 1: no concept in a majority.
        let concepts: [Float] = [1, 0, 1, 1, 0, 0, 1, 0, 0, 1]
        let data = try ConceptDataset(inputs: Tensor(zeros: [5, 2]), concepts: Tensor(shape: [5, 2], scalars: concepts),
                                      labels: [0, 0, 0, 1, 1], classCount: 2)
        #expect(ConceptSelection.majorityCandidates(data) == [[0], [0, 1]])
    }

    @Test func thePlotDrawsOneLinePerCurveAndTheProbe() {
        let svg = interventionPlot([("CBM joint", [0.5, 0.7, 0.9]), ("LaBo", [0.4, 0.4, 0.6])], probe: 0.8)
        #expect(svg.hasPrefix("<svg ") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 2)
        #expect(svg.contains(">CBM joint</text>") && svg.contains(">LaBo</text>") && svg.contains(">linear probe</text>"))
    }
}
