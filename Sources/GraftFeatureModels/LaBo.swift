import GraftAutodiff
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor
import GraftTrain

/// A LaBo-style bottleneck ("Language in a Bottle", Yang et al. 2023): the
/// concepts are sentences embedded by the same frozen encoder as the inputs,
/// and a class-concept association matrix `W` (`[classes, m]`, a softmax over
/// concepts per class) gives
/// `logits = scale · emb(x) · (softmax(W) · E)ᵀ = scale · (emb(x) Eᵀ) softmax(W)ᵀ`.
/// `W` starts at 1 on each class's own concepts and 0 elsewhere; it is the only
/// trained parameter (`association`).
///
/// The concept scores `emb(x) · E_j` are the bottleneck. To read them as
/// concept predictions and to intervene, training also records, per concept,
/// the mean score of the training inputs that have it ("on") and that lack it
/// ("off"): a concept is predicted present above the midpoint, and an
/// intervention sets its score to the on or off level. These two levels are
/// Graft's addition; LaBo itself has no intervention.
public final class LaBo: Module, ConceptBottleneck {
    /// `[m, d]` concept embeddings (fixed).
    public private(set) var conceptEmbeddings: Tensor
    /// `W`, `[classes, m]`.
    public let association: Parameter
    /// The factor on the logits (the similarities of normalised embeddings differ by little).
    public private(set) var scale: Float
    /// Per concept, the mean training score with and without the concept; `nil` before training.
    public private(set) var levels: (on: Tensor, off: Tensor)?
    /// The concepts each class owns (its row of the association matrix starts at 1 on them).
    public let classConcepts: [[Int]]

    /// The number of concepts `m`.
    public var conceptCount: Int { conceptEmbeddings.shape[0] }
    /// The embedding width `d`, shared by the inputs and the concepts.
    public var featureCount: Int { conceptEmbeddings.shape[1] }
    /// The number of classes.
    public var classCount: Int { association.value.shape[0] }

    /// A bottleneck over `conceptEmbeddings` (`[m, d]`) where class `y` owns the concepts `classConcepts[y]`.
    /// - Throws: `ConceptError.shape` unless `conceptEmbeddings` is `[m, d]` with `m > 0`; `ConfigurationError` if a
    ///   concept index is out of range, a class owns none, or there are fewer than 2 classes.
    public init(conceptEmbeddings: Tensor, classConcepts: [[Int]], scale: Float = 50) throws {
        guard conceptEmbeddings.rank == 2, conceptEmbeddings.shape[0] > 0 else {
            throw ConceptError.shape("concept embeddings must be [concepts, features], got \(conceptEmbeddings.shape)")
        }
        let m = conceptEmbeddings.shape[0]
        guard classConcepts.count >= 2 else { throw ConfigurationError("LaBo needs at least 2 classes, got \(classConcepts.count)") }
        var weights = Tensor(zeros: [classConcepts.count, m])
        for (label, owned) in classConcepts.enumerated() {
            guard !owned.isEmpty else { throw ConfigurationError("class \(label) has no concepts") }
            for concept in owned {
                guard (0..<m).contains(concept) else {
                    throw ConfigurationError("class \(label) names concept \(concept); expected one of 0..<\(m)")
                }
                weights[label, concept] = 1
            }
        }
        self.conceptEmbeddings = conceptEmbeddings
        self.classConcepts = classConcepts
        association = Parameter(weights)
        self.scale = scale
    }

    /// The association matrix `W` (`association`), the only parameter; the concept embeddings are not one.
    public var localParameters: [(name: String, parameter: Parameter)] { [("association", association)] }

    /// `[n, m]` concept scores `emb(x) · E_j`.
    public func conceptScores(_ inputs: Tensor) -> Tensor { Tensor.matmul(inputs, conceptEmbeddings, transposeB: true) }

    /// `[n, classes]` logits from concept scores.
    func logits(scores: Tensor, tape: Tape?) -> Variable {
        let w = tape.map { $0.variable(association) } ?? Variable(association.value)
        return Variable.matmul(Variable(scores), w.softmax(), transposeB: true) * scale
    }

    /// The training loss: cross-entropy of the logits of `[n, m]` concept scores against `labels`.
    func loss(scores: Tensor, labels: [Int], tape: Tape?) -> Variable {
        Variable.crossEntropy(logits: logits(scores: scores, tape: tape), targets: labels)
    }

    /// Trains `W` by cross-entropy (full batch) and records the concepts' on and
    /// off levels from `data.concepts` (whether each input has each concept).
    /// A concept that no training input has (or every one has) takes the highest
    /// (lowest) training score as its missing level.
    /// - Returns: the losses.
    /// - Throws: `ConceptError` if `data` does not fit the model.
    @discardableResult
    public func train(_ data: ConceptDataset, steps: Int, optimizer: OptimizerFactory) throws -> [Float] {
        try data.check(features: featureCount, concepts: conceptCount, classes: classCount)
        let scores = conceptScores(data.inputs)
        let losses = minimise([association], steps: steps, optimizer: optimizer) { loss(scores: scores, labels: data.labels, tape: $0) }
        var on = Tensor(zeros: [conceptCount]), off = Tensor(zeros: [conceptCount])
        for concept in 0..<conceptCount {
            let column = (0..<data.count).map { (score: scores[$0, concept], present: data.concepts[$0, concept] == 1) }
            let present = column.filter(\.present).map(\.score), absent = column.filter { !$0.present }.map(\.score)
            let all = column.map(\.score)
            on.scalars[concept] = present.isEmpty ? all.max()! : present.reduce(0, +) / Float(present.count)
            off.scalars[concept] = absent.isEmpty ? all.min()! : absent.reduce(0, +) / Float(absent.count)
        }
        levels = (on, off)
        return losses
    }

    /// The value of the `format` attribute of saved LaBo models.
    public static let format = "graft-labo/1"

    private struct Stored: Codable {
        var conceptCount: Int, featureCount: Int, classConcepts: [[Int]], scale: Float
    }

    /// Writes the trained model (`WeightsFile`, atomic): `association`, the concept
    /// embeddings, the on and off levels, and the classes' concepts and scale.
    public func save(to path: String) throws {
        guard let levels else { throw ConceptError.notTrained(model: "LaBo") }
        let stored = Stored(conceptCount: conceptCount, featureCount: featureCount, classConcepts: classConcepts, scale: scale)
        try WeightsFile.write(self, format: Self.format, configuration: stored,
                              tensors: ["concept_embeddings": conceptEmbeddings, "levels.on": levels.on, "levels.off": levels.off],
                              to: path)
    }

    /// The model written by `save(to:)`, predicting as the saved one did.
    /// - Throws: `FileContentError` for another kind of file, `HDF5Error` or `ParameterLoadingError` naming a bad tensor.
    public static func load(from path: String) throws -> LaBo {
        let stored = try WeightsFile.configuration(Stored.self, format: format, at: path)
        let (m, d) = (stored.conceptCount, stored.featureCount)
        let model = try LaBo(conceptEmbeddings: Tensor(zeros: [m, d]), classConcepts: stored.classConcepts, scale: stored.scale)
        let state = try WeightsFile.read(into: model, from: path,
                                         tensors: ["concept_embeddings": [m, d], "levels.on": [m], "levels.off": [m]])
        model.conceptEmbeddings = state["concept_embeddings"]!
        model.levels = (state["levels.on"]!, state["levels.off"]!)
        return model
    }

    /// Classes from the concept scores through `W` (known concepts' scores first set to their on or
    /// off level); a concept is predicted present (1, else 0) when its score is above the midpoint of its levels.
    /// - Throws: `ConceptError.notTrained` before training; `ConceptError` for inputs or an intervention of the wrong shape.
    public func predict(_ inputs: Tensor, intervention: ConceptIntervention?) throws -> ConceptPrediction {
        guard let levels else { throw ConceptError.notTrained(model: "LaBo") }
        try checkInputs(inputs, features: featureCount)
        try intervention?.check(count: inputs.shape[0], concepts: conceptCount)
        var scores = conceptScores(inputs)
        if let intervention {
            scores = ConceptIntervention(known: intervention.known, truth: levels.off + intervention.truth * (levels.on - levels.off))
                .apply(to: scores)
        }
        let midpoint = (levels.on + levels.off) * 0.5
        let present = Tensor.combine(scores, midpoint) { $0 > $1 ? 1 : 0 }
        return ConceptPrediction(concepts: present, classes: logits(scores: scores, tape: nil).value.argmax())
    }
}

/// LaBo's per-class concept selection: a submodular objective mixing how
/// discriminative each concept is for the class and how well the chosen
/// concepts cover the class's candidates (facility location on cosine similarity).
public enum ConceptSelection {
    /// `D[y, j]`: how specific concept `j` is to class `y`, the softmax over
    /// classes of the mean cosine similarity between the concept's embedding
    /// and the inputs of each class, divided by `temperature`. (LaBo scores
    /// concepts against the classes' training images in this spirit; the exact
    /// form here is Graft's.)
    /// - Throws: `ConceptError` if the widths differ, the labels are not one per input or a label is out of range;
    ///   `ConfigurationError` if a class has no input.
    public static func discriminability(concepts: Tensor, inputs: Tensor, labels: [Int], classCount: Int,
                                        temperature: Float = 0.01) throws -> Tensor {
        guard concepts.rank == 2 else { throw ConceptError.shape("concept embeddings must be [concepts, features], got \(concepts.shape)") }
        try checkInputs(inputs, features: concepts.shape[1])
        guard labels.count == inputs.shape[0] else {
            throw ConceptError.shape("expected \(inputs.shape[0]) labels (one per input), got \(labels.count)")
        }
        if let (example, label) = labels.enumerated().first(where: { !(0..<classCount).contains($0.element) }) {
            throw ConceptError.labelOutOfRange(example: example, label: label, classCount: classCount)
        }
        let similarities = Tensor.matmul(normalizedRows(inputs), normalizedRows(concepts), transposeB: true)  // [n, m]
        var means: [Float] = []
        for label in 0..<classCount {
            let members = labels.indices.filter { labels[$0] == label }
            guard !members.isEmpty else { throw ConfigurationError("class \(label) has no input to score concepts against") }
            means += similarities.gatherRows(members).mean(alongAxis: 0).scalars
        }
        let table = Tensor(shape: [classCount, concepts.shape[0]], scalars: means)
        return (table.permuted([1, 0]) * (1 / temperature)).softmax().permuted([1, 0])  // softmax over classes
    }

    /// For each class, greedily picks `count` of its `candidates` (all if it has
    /// fewer), maximising the monotone submodular
    /// `F(S) = weight · (1/count) Σ_{j∈S} D[y, j] + (1 - weight) · (1/|C_y|) Σ_{i∈C_y} max_{j∈S} max(0, cos(e_i, e_j))`.
    /// Ties go to the earlier candidate.
    /// - Throws: `ConceptError.shape` if `discriminability` is not `[classes, m]`; `ConfigurationError` if `weight` is
    ///   outside `0...1`, `count < 1` or a candidate is out of range.
    public static func select(candidates: [[Int]], concepts: Tensor, discriminability: Tensor, count: Int,
                              weight: Float = 0.5) throws -> [[Int]] {
        let m = concepts.shape[0]
        guard discriminability.shape == [candidates.count, m] else {
            throw ConceptError.shape("discriminability must be [\(candidates.count), \(m)] (classes x concepts), got \(discriminability.shape)")
        }
        guard (0...1).contains(weight) else { throw ConfigurationError("selection weight must be in 0...1, got \(weight)") }
        guard count >= 1 else { throw ConfigurationError("select at least one concept per class, got \(count)") }
        if let bad = candidates.joined().first(where: { !(0..<m).contains($0) }) {
            throw ConfigurationError("candidate concept \(bad) is outside 0..<\(m)")
        }
        let cosine = Tensor.matmul(normalizedRows(concepts), normalizedRows(concepts), transposeB: true)
        return candidates.enumerated().map { label, pool in
            var chosen: [Int] = []
            var coverage = [Float](repeating: 0, count: pool.count)  // max similarity of each candidate to the chosen set
            while chosen.count < min(count, pool.count) {
                var best: (gain: Float, concept: Int, coverage: [Float])?
                for concept in pool where !chosen.contains(concept) {
                    let covered = pool.enumerated().map { max(coverage[$0.offset], max(0, cosine[$0.element, concept])) }
                    let gain = weight * discriminability[label, concept] / Float(count)
                        + (1 - weight) * zip(covered, coverage).reduce(0) { $0 + $1.0 - $1.1 } / Float(pool.count)
                    if best.map({ gain > $0.gain }) ?? true { best = (gain, concept, covered) }
                }
                chosen.append(best!.concept)
                coverage = best!.coverage
            }
            return chosen
        }
    }

    /// Rows scaled to unit Euclidean norm (zero rows stay zero).
    static func normalizedRows(_ matrix: Tensor) -> Tensor {
        let norms = (matrix * matrix).sum(alongAxis: 1, keepingDimension: true).map { max($0.squareRoot(), 1e-12) }
        return matrix / norms
    }
}
