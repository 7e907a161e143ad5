import Foundation
import GraftTensor

/// Folds of example indices for `folds`-fold cross-validation: each class's
/// members shuffled (by `seed`) and dealt round-robin, continuing from class
/// to class, so that every fold holds each class in proportion and the folds'
/// sizes differ by at most one.
public func stratifiedFolds(labels: [Int], classCount: Int, folds: Int, seed: UInt64) -> [[Int]] {
    var generator = SeededGenerator(seed: seed)
    var result = [[Int]](repeating: [], count: folds), next = 0
    for label in 0..<classCount {
        for example in labels.indices.filter({ labels[$0] == label }).shuffled(using: &generator) {
            result[next % folds].append(example)
            next += 1
        }
    }
    return result.map { $0.sorted() }
}

/// One model's evaluation on one held-out fold of one repetition of cross-validation.
public struct FoldRun: Sendable {
    /// The model's scores on the held-out fold.
    public var evaluation: ConceptEvaluation
    /// Examples in the fold.
    public var count: Int
    /// The index of the repetition the fold belongs to; `pooled` groups runs by it.
    public var repetition: Int

    /// The evaluation of a fold of `count` held-out examples in repetition `repetition`.
    public init(evaluation: ConceptEvaluation, count: Int, repetition: Int) {
        self.evaluation = evaluation
        self.count = count
        self.repetition = repetition
    }
}

/// The mean of `value` over all held-out examples of a repetition (folds
/// weighted by their size), averaged over repetitions, and its sample
/// standard deviation over the repetitions (0 for one).
public func pooled(_ runs: [FoldRun], _ value: (ConceptEvaluation) -> Double) -> (mean: Double, deviation: Double) {
    let perRepetition = Dictionary(grouping: runs, by: \.repetition).values.map { group in
        group.reduce(0) { $0 + value($1.evaluation) * Double($1.count) } / Double(group.reduce(0) { $0 + $1.count })
    }
    let mean = perRepetition.reduce(0, +) / Double(perRepetition.count)
    let variance = perRepetition.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(perRepetition.count - 1, 1))
    return (mean, variance.squareRoot())
}

/// `pooled` at every point of the runs' intervention curves.
public func pooledCurve(_ runs: [FoldRun]) -> [(mean: Double, deviation: Double)] {
    (0..<(runs.first?.evaluation.interventionCurve.count ?? 0)).map { k in pooled(runs) { $0.interventionCurve[k] } }
}

extension ConceptSelection {
    /// Each class's candidate concepts: those true of more than half of its
    /// members in `data` (every concept when none is), as LaBo's stand-in for
    /// the reference's language-model suggestions.
    public static func majorityCandidates(_ data: ConceptDataset) -> [[Int]] {
        (0..<data.classCount).map { label in
            let members = data.labels.indices.filter { data.labels[$0] == label }
            let common = (0..<data.conceptCount).filter { concept in
                2 * members.count(where: { data.concepts[$0, concept] == 1 }) > members.count
            }
            return common.isEmpty ? Array(0..<data.conceptCount) : common
        }
    }
}

/// A line plot of intervention curves (class accuracy against attributes
/// intervened), with the linear probe's accuracy as a dashed line.
public func interventionPlot(_ curves: [(name: String, values: [Double])], probe: Double) -> String {
    let points = curves.map(\.values.count).max() ?? 1
    return linePlot(curves, xLabels: (0..<points).map(String.init), labelEvery: 2, xTitle: "attributes intervened",
                    yTitle: "class accuracy", reference: ("linear probe", probe))
}

/// An SVG line plot of `curves` over the points `xLabels` (every `labelEvery`-th labelled),
/// values in [0, 1], with an optional dashed reference line, and a legend.
public func linePlot(_ curves: [(name: String, values: [Double])], xLabels: [String], labelEvery: Int = 1, xTitle: String,
                     yTitle: String, reference: (name: String, value: Double)? = nil) -> String {
    let (width, height, left, right, top, bottom) = (640.0, 400.0, 60.0, 170.0, 20.0, 50.0)
    let points = max(xLabels.count, 1)
    func x(_ k: Int) -> Double { left + Double(k) / Double(max(points - 1, 1)) * (width - left - right) }
    func y(_ accuracy: Double) -> Double { height - bottom - accuracy * (height - top - bottom) }
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78"]
    func format(_ value: Double) -> String { String(format: "%.1f", value) }
    var svg = [
        ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" font-family="sans-serif" font-size="12">"##,
        ##"<rect width="100%" height="100%" fill="white"/>"##,
    ]
    for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
        svg.append(##"<line x1="\##(format(left))" y1="\##(format(y(tick)))" x2="\##(format(width - right))" y2="\##(format(y(tick)))" stroke="#ddd"/>"##)
        svg.append(##"<text x="\##(format(left - 8))" y="\##(format(y(tick) + 4))" text-anchor="end">\##(String(format: "%.1f", tick))</text>"##)
    }
    for k in stride(from: 0, to: xLabels.count, by: max(labelEvery, 1)) {
        svg.append(##"<text x="\##(format(x(k)))" y="\##(format(height - bottom + 18))" text-anchor="middle">\##(xLabels[k])</text>"##)
    }
    svg.append(##"<text x="\##(format((left + width - right) / 2))" y="\##(format(height - 10))" text-anchor="middle">\##(xTitle)</text>"##)
    svg.append(##"<text transform="translate(16 \##(format((top + height - bottom) / 2))) rotate(-90)" text-anchor="middle">\##(yTitle)</text>"##)
    var legend: [(String, String, Bool)] = []
    if let reference {
        svg.append(##"<line x1="\##(format(left))" y1="\##(format(y(reference.value)))" x2="\##(format(width - right))" y2="\##(format(y(reference.value)))" stroke="#555" stroke-dasharray="5 4"/>"##)
        legend.append((reference.name, "#555", true))
    }
    for (index, curve) in curves.enumerated() {
        let colour = colours[index % colours.count]
        let path = curve.values.enumerated().map { "\(format(x($0.offset))),\(format(y($0.element)))" }.joined(separator: " ")
        svg.append(##"<polyline points="\##(path)" fill="none" stroke="\##(colour)" stroke-width="2"/>"##)
        legend.append((curve.name, colour, false))
    }
    for (index, (name, colour, dashed)) in legend.enumerated() {
        let row = top + 10 + Double(index) * 18
        svg.append(##"<line x1="\##(format(width - right + 12))" y1="\##(format(row))" x2="\##(format(width - right + 36))" y2="\##(format(row))" stroke="\##(colour)" stroke-width="2"\##(dashed ? #" stroke-dasharray="5 4""# : "")/>"##)
        svg.append(##"<text x="\##(format(width - right + 42))" y="\##(format(row + 4))">\##(name)</text>"##)
    }
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
}
