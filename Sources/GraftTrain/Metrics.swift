import Foundation

/// Classification quality of predicted against true labels.
public struct ClassificationReport: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Precision, recall and F1 of one class, and its support (the true examples of the class).
    public struct ClassScores: Sendable, Codable, Equatable {
        /// The class name.
        public let label: String
        /// Fractions in `0...1`; each is 0 where its denominator is.
        public let precision: Double, recall: Double, f1: Double
        /// The number of examples whose true class this is.
        public let support: Int
    }

    /// The fraction of predictions equal to the truth (0 for no examples).
    public let accuracy: Double
    /// The unweighted mean of the per-class F1 scores (classes with support or predictions).
    public let macroF1: Double
    /// The scores of every class, in the order of `labels`.
    public let classes: [ClassScores]
    /// The number of examples (or labelled tokens) scored.
    public let count: Int

    /// Scores `predictions` against `truth` (class indices into `labels`).
    public init(predictions: [Int], truth: [Int], labels: [String]) {
        precondition(predictions.count == truth.count, "ClassificationReport: \(predictions.count) predictions for \(truth.count) labels")
        count = truth.count
        accuracy = truth.isEmpty ? 0 : Double(zip(predictions, truth).filter { $0 == $1 }.count) / Double(truth.count)
        let scores = labels.indices.map { c in
            let truePositives = zip(predictions, truth).filter { $0 == c && $1 == c }.count
            let predicted = predictions.filter { $0 == c }.count
            let actual = truth.filter { $0 == c }.count
            let precision = predicted == 0 ? 0 : Double(truePositives) / Double(predicted)
            let recall = actual == 0 ? 0 : Double(truePositives) / Double(actual)
            let f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
            return ClassScores(label: labels[c], precision: precision, recall: recall, f1: f1, support: actual)
        }
        let scored = scores.indices.filter { c in scores[c].support > 0 || predictions.contains(c) }
        classes = scores
        macroF1 = scored.isEmpty ? 0 : scored.map { scores[$0].f1 }.reduce(0, +) / Double(scored.count)
    }

    /// A per-class table followed by accuracy and macro-F1.
    public var description: String {
        let width = max(5, classes.map(\.label.count).max() ?? 0)
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        var lines = ["\(pad("class"))  precision  recall     f1  support"]
        for c in classes {
            lines.append("\(pad(c.label))  \(String(format: "%9.3f  %6.3f  %5.3f  %7d", c.precision, c.recall, c.f1, c.support))")
        }
        lines.append(String(format: "accuracy %.4f, macro-F1 %.4f (%d examples)", accuracy, macroF1, count))
        return lines.joined(separator: "\n")
    }
}

/// `exp(-mean log p)` of a list of token log-probabilities.
public func perplexity(logProbabilities: [Double]) -> Double {
    logProbabilities.isEmpty ? .nan : Foundation.exp(-logProbabilities.reduce(0, +) / Double(logProbabilities.count))
}
