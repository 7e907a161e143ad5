import Foundation
import GraftAdapters
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor
import GraftTrain

extension LabelledFeatures {
    /// Texts as the rows of a stream that learners over the backbone read (``AdapterLearner``):
    /// row `i` holds text `i`'s token ids (exact as `Float` below 2^24), then -1s up to `width`.
    /// - Throws: `ContinualError.invalidData` if the number of texts differs from the number of labels,
    ///   a text has more than `width` ids, or an id is outside `0..<2^24`.
    public init(tokenIDs: [[Int]], labels: [Int], width: Int) throws {
        guard tokenIDs.count == labels.count else {
            throw ContinualError.invalidData("\(tokenIDs.count) texts for \(labels.count) labels")
        }
        if let long = tokenIDs.firstIndex(where: { $0.count > width }) {
            throw ContinualError.invalidData("text \(long + 1) has \(tokenIDs[long].count) token ids; rows hold \(width)")
        }
        if let bad = tokenIDs.joined().first(where: { !(0..<(1 << 24)).contains($0) }) {
            throw ContinualError.invalidData("token id \(bad) is outside 0..<2^24")
        }
        let scalars = tokenIDs.flatMap { ids in ids.map(Float.init) + [Float](repeating: -1, count: width - ids.count) }
        try self.init(features: Tensor(shape: [tokenIDs.count, width], scalars: scalars), labels: labels)
    }

    /// The token ids of each row of a `tokenIDs:` tensor.
    /// - Throws: `ContinualError.invalidData` for a row that is not ids followed by -1s.
    static func tokenIDs(of rows: Tensor) throws -> [[Int]] {
        guard rows.rank == 2 else { throw ContinualError.invalidData("token-id rows of shape \(rows.shape); expected [n, width]") }
        let width = rows.shape[1]
        return try (0..<rows.shape[0]).map { row in
            let values = rows.scalars[(row * width)..<((row + 1) * width)]
            let ids = values.prefix { $0 >= 0 }
            guard ids.allSatisfy({ $0 < Float(1 << 24) && $0 == $0.rounded() }), values.dropFirst(ids.count).allSatisfy({ $0 == -1 }) else {
                throw ContinualError.invalidData("row \(row + 1) is not token ids followed by -1s: are these features rather than texts?")
            }
            return ids.map { Int($0) }
        }
    }
}

/// An adapter and a sequence-classification head over a frozen backbone, learned
/// as a continual learner: the stream's rows are texts' token ids
/// (`LabelledFeatures(tokenIDs:labels:width:)`), and only the adapter and the head
/// train. Training passes use the adapter's dropout; scoring runs without it, in
/// batches of ``inferenceBatchSize`` texts.
public final class AdapterLearner: ContinualLearner {
    /// The backbone, its adapter (active as `task`) and the head.
    public let classifier: Classifier
    /// The trainable adapter, grafted into `classifier`'s model as `task`; the backbone stays frozen.
    public let adapter: any Adapter
    /// Texts per forward pass when scoring.
    public var inferenceBatchSize = 32
    /// Counts training passes: each one's dropout seed.
    private var passes: UInt64

    /// A fresh adapter of `configuration` and a head of `classCount` classes, both from `seed`.
    /// - Throws: `ConfigurationError` if the adapter does not fit the backbone.
    public init(backbone: Backbone, adapter configuration: AdapterConfiguration, classCount: Int, seed: UInt64) throws {
        adapter = try configuration.makeAdapter(model: backbone.configuration, seed: seed)
        let model = GraftedModel(encoder: backbone.encoder)
        try model.add("task", adapter)
        try model.activate(.single("task"))
        classifier = Classifier(backbone: backbone, model: model, kind: .sequence, labels: (0..<classCount).map { "\($0)" }, seed: seed &+ 1)
        passes = seed << 32
    }

    /// The trained parts only: the adapter (`adapter`) and the head (`head`), not the frozen backbone.
    public var children: [(name: String, module: any Module)] { [("adapter", adapter), ("head", classifier.head)] }
    /// The number of classes the head scores.
    public var outputSize: Int { classifier.labels.count }

    /// Each row's token ids.
    public func encode(_ features: Tensor) throws -> [[Int]] { try LabelledFeatures.tokenIDs(of: features) }
    /// The token ids of the texts `rows`, in that order.
    public func select(_ rows: [Int], of encoded: [[Int]]) -> [[Int]] { rows.map { encoded[$0] } }

    /// `[n, classes]` logits of the texts: with a tape (training), one pass with the adapter's
    /// dropout, recorded on it; without, dropout-free passes of ``inferenceBatchSize`` texts.
    public func logits(_ encoded: [[Int]], tape: Tape?) -> Variable {
        let model = classifier.model
        if let tape {
            passes &+= 1
            return classifier.logits(encoded, context: model.context(tape: tape, isTraining: true, seed: passes)).logits
        }
        let blocks = stride(from: 0, to: encoded.count, by: inferenceBatchSize).map { start in
            classifier.logits(Array(encoded[start..<min(start + inferenceBatchSize, encoded.count)]), context: model.context()).logits.value
        }
        return Variable(blocks.count == 1 ? blocks[0] : Tensor.concatenate(blocks, alongAxis: 0))
    }

    /// The frozen backbone's mean-pooled, L2-normalised embeddings of the rows, `[n, hidden]`
    /// (no adapter): what ``TaskRoutedLearner`` routes adapter experts by.
    public func frozenEmbeddings(_ encoded: [[Int]]) -> Tensor {
        let backbone = classifier.backbone
        let rows = backbone.embeddings(ofTokenIDs: encoded, batchSize: inferenceBatchSize)
        return Tensor(shape: [encoded.count, backbone.configuration.hiddenSize], scalars: rows.flatMap { $0 })
    }
}

/// One expert per task and a router that infers an example's task at test time
/// (adapter-per-task, or head-per-task on features): task `i` trains expert `i`
/// alone, on its own classes; an example is then scored by the expert of the task
/// whose prototype (the normalised mean of its training examples' routing features)
/// is nearest by cosine, among that task's classes only. Nothing learned for one
/// task changes another's expert, so forgetting comes only from routing mistakes.
/// Train it with the naive strategy and `ContinualSchedule.LossClasses.task`.
public final class TaskRoutedLearner<Expert: ContinualLearner>: ContinualLearner {
    /// Each row's encoding for the experts and its routing features.
    public typealias Encoded = (expert: Expert.Encoded, routing: Tensor)

    /// One expert per task: expert `i` trains only while task `i` is learned.
    public let experts: [Expert]
    /// Routing features `[n, r]` of a split's rows, from the stream's rows and their expert encoding.
    private let routingFeatures: (Tensor, Expert.Encoded) throws -> Tensor
    /// Per task begun: its normalised prototype and its classes.
    private var prototypes: [(vector: [Float], classes: Range<Int>)] = []
    /// The task being learned: training passes go to its expert.
    private var current = 0

    /// One expert per task (each scoring every class of the stream); `routingFeatures` maps
    /// a split's rows and their expert encoding to the features the router compares.
    public init(experts: [Expert], routingFeatures: @escaping (Tensor, Expert.Encoded) throws -> Tensor) {
        precondition(!experts.isEmpty, "TaskRoutedLearner: give at least one expert")
        self.experts = experts
        self.routingFeatures = routingFeatures
    }

    /// The experts, named `expert0`, `expert1`, ….
    public var children: [(name: String, module: any Module)] { experts.enumerated().map { ("expert\($0)", $1) } }
    /// The number of classes scored: the first expert's (each expert scores every class of the stream).
    public var outputSize: Int { experts[0].outputSize }

    /// The first expert's encoding of the rows (shared by every expert) and their routing features.
    /// - Throws: what the first expert's `encode` or `routingFeatures` throws.
    public func encode(_ features: Tensor) throws -> Encoded {
        let expert = try experts[0].encode(features)
        return (expert, try routingFeatures(features, expert))
    }

    /// The rows `rows` of both the expert encoding and the routing features, in that order.
    public func select(_ rows: [Int], of encoded: Encoded) -> Encoded {
        (experts[0].select(rows, of: encoded.expert), encoded.routing.gatherRows(rows))
    }

    /// Task `index`'s expert learns from now on; its prototype is its training examples' mean routing feature.
    /// - Precondition: an expert for task `index` exists.
    public func beginTask(_ index: Int, classes: Range<Int>, training: Encoded) {
        precondition(index < experts.count, "TaskRoutedLearner: task \(index + 1) has no expert (\(experts.count) experts)")
        let prototype = (normalizedRows(training.routing.mean(alongAxis: 0, keepingDimension: true))[0], classes)
        if index < prototypes.count { prototypes[index] = prototype } else { prototypes.append(prototype) }
        current = index
    }

    /// The task each row is routed to (0 before any task is begun).
    public func route(_ encoded: Encoded) -> [Int] {
        let routing = encoded.routing
        guard !prototypes.isEmpty, routing.shape[0] > 0 else { return [Int](repeating: 0, count: routing.shape[0]) }
        let matrix = Tensor(shape: [prototypes.count, routing.shape[1]], scalars: prototypes.flatMap(\.vector))
        // Each row's cosines times its norm: the same nearest prototype.
        return Tensor.matmul(routing, matrix, transposeB: true).argmax()
    }

    /// With a tape (training): the current task's expert. Without: each row routed, scored by
    /// its task's expert, classes outside that task at -1e9.
    public func logits(_ encoded: Encoded, tape: Tape?) -> Variable {
        if let tape { return experts[current].logits(encoded.expert, tape: tape) }
        let routes = route(encoded), classes = outputSize
        var scalars = [Float](repeating: -1e9, count: routes.count * classes)
        for task in Set(routes) {
            let rows = routes.indices.filter { routes[$0] == task }
            let scores = experts[task].logits(experts[0].select(rows, of: encoded.expert), tape: nil).value
            let kept = task < prototypes.count ? prototypes[task].classes : 0..<classes
            for (i, row) in rows.enumerated() {
                for column in kept { scalars[row * classes + column] = scores.scalars[i * classes + column] }
            }
        }
        return Variable(Tensor(shape: [routes.count, classes], scalars: scalars))
    }
}
