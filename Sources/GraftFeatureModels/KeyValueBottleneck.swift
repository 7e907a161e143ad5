import Foundation
import GraftAutodiff
import GraftFiles
import GraftIO
import GraftNN
import GraftTensor
import GraftTrain

/// How a feature vector is cut into the heads' key-space vectors.
public enum KeyValueSplitter: String, Codable, Sendable, CaseIterable {
    /// A fixed random Gaussian projection `[d, heads * keySize]`, each column
    /// scaled to unit L2 norm; head `h` reads columns `h k ..< (h + 1) k`.
    case projection
    /// Consecutive chunks of the feature vector: needs `d = heads * keySize`.
    case chunks
}

/// The sizes of a discrete key-value bottleneck (Träuble et al. 2023).
///
/// The defaults are sized for a CPU (64 heads of 512 keys, 14 dimensions);
/// the paper's reference sizes are 256 heads of 4096 keys of 14 dimensions.
public struct KeyValueBottleneckConfiguration: Codable, Sendable, Equatable {
    /// Dimension `d` of the frozen features.
    public var inputSize: Int
    /// Number of heads (codebooks) `C`.
    public var heads: Int
    /// Keys per head `K`.
    public var keysPerHead: Int
    /// Dimension `k` of each head's keys.
    public var keySize: Int
    /// Dimension `dv` of the value vectors; without a decoder, the number of classes.
    public var valueSize: Int
    /// How features are cut into head vectors (default: the random projection).
    public var splitter: KeyValueSplitter
    /// Outputs of an optional trainable linear decoder on the mean of the
    /// selected values; `nil`: that mean is the output (the reference's
    /// non-parametric decoder).
    public var decoderOutputs: Int?

    /// Sizes for `inputSize`-wide features and `valueSize`-wide values; by default the CPU
    /// sizes (64 heads of 512 keys of 14 dimensions), the projection splitter and no decoder.
    /// `validate()` checks them.
    public init(inputSize: Int, heads: Int = 64, keysPerHead: Int = 512, keySize: Int = 14, valueSize: Int,
                splitter: KeyValueSplitter = .projection, decoderOutputs: Int? = nil) {
        (self.inputSize, self.heads, self.keysPerHead, self.keySize) = (inputSize, heads, keysPerHead, keySize)
        (self.valueSize, self.splitter, self.decoderOutputs) = (valueSize, splitter, decoderOutputs)
    }

    /// The width of the output (logits): `decoderOutputs`, else `valueSize`.
    public var outputSize: Int { decoderOutputs ?? valueSize }

    /// Throws `KeyValueBottleneckError.invalidConfiguration` naming the first size out of range.
    public func validate() throws {
        let sizes = [("input size", inputSize), ("heads", heads), ("keys per head", keysPerHead), ("key size", keySize),
                     ("value size", valueSize), ("decoder outputs", decoderOutputs ?? 1)]
        if let bad = sizes.first(where: { $0.1 <= 0 }) {
            throw KeyValueBottleneckError.invalidConfiguration("\(bad.0) must be positive, got \(bad.1)")
        }
        if splitter == .chunks && heads * keySize != inputSize {
            throw KeyValueBottleneckError.invalidConfiguration(
                "chunking needs heads x key size = input size, got \(heads) x \(keySize) = \(heads * keySize) for \(inputSize)")
        }
    }
}

/// Where a bottleneck's keys are in their life cycle.
public enum KeyState: String, Codable, Sendable {
    /// Not initialised: keys cannot be looked up yet.
    case uninitialized
    /// Initialised and open to EMA refinement.
    case initialized
    /// Fixed for good: values can be trained and predictions made.
    case frozen
}

/// How keys are first placed.
public enum KeyInitialization: Sendable, Equatable {
    /// Independent Gaussian draws matching the mean and standard deviation of
    /// each head coordinate of the data. No key counts as used yet, so EMA
    /// refinement replaces every key the first batch does not select.
    case random
    /// Lloyd's k-means per head, started from `K` distinct random examples
    /// (needs at least `K` examples); empty clusters restart at a random example.
    case kMeans(iterations: Int)
}

/// Settings of the EMA refinement of the keys on unlabelled data.
public struct KeyRefinement: Sendable, Equatable {
    /// Passes over the data, in shuffled batches.
    public var epochs: Int
    /// Examples per batch; each batch is one EMA update.
    public var batchSize: Int
    /// EMA decay of each key's usage and running mean (0.95 in the reference).
    public var decay: Float
    /// A key whose EMA usage (fraction of a batch's examples it is selected by)
    /// falls below `deadCodeThreshold / K`, a fraction of uniform usage, is
    /// dead: it is moved to a random example of the batch and given uniform
    /// usage again. 0 disables replacement.
    public var deadCodeThreshold: Float

    /// Refinement settings; by default 2 epochs of batches of 256, decay 0.95 and dead-code
    /// threshold 0.1.
    public init(epochs: Int = 2, batchSize: Int = 256, decay: Float = 0.95, deadCodeThreshold: Float = 0.1) {
        (self.epochs, self.batchSize, self.decay, self.deadCodeThreshold) = (epochs, batchSize, decay, deadCodeThreshold)
    }
}

/// The key each head selected for each example: the rows of the values table
/// they read. Made by `KeyValueBottleneck.codes(for:)`.
public struct KeyCodes: Sendable, Equatable {
    /// Example `i`, head `h`: `indices[i * heads + h] = h * keysPerHead + key`, a row of `values`.
    public let indices: [Int]
    /// Number of heads `C`: the codes per example.
    public let heads: Int
    /// Keys per head `K`.
    public let keysPerHead: Int

    /// Number of examples.
    public var count: Int { indices.count / heads }

    /// The codes of the examples `rows`, in that order.
    public func rows(_ rows: [Int]) -> KeyCodes {
        KeyCodes(indices: rows.flatMap { indices[($0 * heads)..<(($0 + 1) * heads)] }, heads: heads, keysPerHead: keysPerHead)
    }
}

/// A discrete key-value bottleneck on frozen features (Träuble et al. 2023).
///
/// A splitter cuts each feature vector into `C` head vectors of dimension `k`;
/// each head picks its nearest key (L2) in its own codebook of `K` keys and
/// reads the paired value vector (`dv`). The output is the mean over heads of
/// the selected values, read as logits, or that mean through a small linear
/// decoder. Keys are never trained by gradient: they are initialised (random
/// or k-means) and refined by EMA on unlabelled data, then frozen. The values
/// (zero at first) and the decoder are the only trainable parameters, and the
/// lookup is not differentiated, so a step updates only the values its batch
/// selected: learning stays local and other classes' values are left alone.
///
/// Parameters: `values` `[C K, dv]` (row `h K + i` is head `h`'s value `i`),
/// `keys` `[C, K, k]` and `projection` `[d, C k]` (frozen; the latter only for
/// the projection splitter), `decoder.weight`, `decoder.bias`.
public final class KeyValueBottleneck: Module {
    /// The value of the `format` attribute of saved bottlenecks.
    public static let format = "graft-kv-bottleneck/1"

    /// The sizes it was built with.
    public let configuration: KeyValueBottleneckConfiguration
    /// The trainable value vectors, `[C K, dv]`.
    public let values: Parameter
    /// The keys, `[C, K, k]`; never trainable.
    public let keys: Parameter
    /// The fixed splitter projection `[d, C k]` (nil when chunking); never trainable.
    public let projection: Parameter?
    /// The trainable linear decoder on the mean of the selected values, `[dv] -> [decoderOutputs]`;
    /// nil when the mean itself is the output.
    public let decoder: Linear?
    /// Where the keys are in their life cycle: initialise, optionally refine, then freeze them
    /// before training or prediction.
    public private(set) var keyState: KeyState = .uninitialized
    /// EMA usage of each key (`[C K]`, fractions of a batch), kept between refinements until the keys are frozen.
    private var usage: [Float]?
    /// Which values (rows of `values`) a training batch has selected since the keys were frozen
    /// (`recordTraining`). Inference averages only over heads whose selected value was trained,
    /// as the reference does: an untrained value (zero) would pull every class's logit toward 0.
    public private(set) var trainedValues: [Bool]
    /// Whether inference skips the heads whose selected value was never trained (the default);
    /// false averages over every head, as training does.
    public var skipsUntrainedValues = true

    /// A bottleneck with zero values, uninitialised keys and, for the
    /// projection splitter, a projection drawn from `seed`.
    public init(configuration: KeyValueBottleneckConfiguration, seed: UInt64) throws {
        try configuration.validate()
        self.configuration = configuration
        let c = configuration
        var generator = SeededGenerator(seed: seed)
        values = Parameter(Tensor(zeros: [c.heads * c.keysPerHead, c.valueSize]))
        trainedValues = [Bool](repeating: false, count: c.heads * c.keysPerHead)
        keys = Parameter(Tensor(zeros: [c.heads, c.keysPerHead, c.keySize]), isTrainable: false)
        if c.splitter == .projection {
            var matrix = Tensor.normal(shape: [c.inputSize, c.heads * c.keySize], generator: &generator)
            let norms = (matrix * matrix).sum(alongAxis: 0).map { 1 / max($0.squareRoot(), 1e-12) }
            matrix = matrix * norms
            projection = Parameter(matrix, isTrainable: false)
        } else {
            projection = nil
        }
        decoder = c.decoderOutputs.map {
            Linear(inputSize: c.valueSize, outputSize: $0, standardDeviation: 1 / Float(c.valueSize).squareRoot(), generator: &generator)
        }
    }

    /// `values`, `keys` and, for the projection splitter, `projection`.
    public var localParameters: [(name: String, parameter: Parameter)] {
        [("values", values), ("keys", keys)] + (projection.map { [("projection", $0)] } ?? [])
    }

    /// The `decoder`, when there is one.
    public var children: [(name: String, module: any Module)] { decoder.map { [("decoder", $0)] } ?? [] }

    // MARK: Keys

    /// Places the keys on `data` (`[n, d]` unlabelled features) and opens them to refinement.
    /// - Throws: `keysFrozen`, `featureSizeMismatch`, or `tooFewExamples` (k-means needs `n >= K`).
    public func initializeKeys(_ method: KeyInitialization, data: Tensor, generator: inout SeededGenerator) throws {
        guard keyState != .frozen else { throw KeyValueBottleneckError.keysFrozen }
        try checkFeatures(data)
        let c = configuration, n = data.shape[0]
        let (needed, purpose) = method == .random
            ? (1, "random key initialisation") : (c.keysPerHead, "k-means key initialisation (one example per key)")
        guard n >= needed else { throw KeyValueBottleneckError.tooFewExamples(needed: needed, found: n, purpose: purpose) }
        let split = splitHeads(data)
        var usage = [Float](repeating: 0, count: c.heads * c.keysPerHead)
        for h in 0..<c.heads {
            let points = split.slice(alongAxis: 1, (h * c.keySize)..<((h + 1) * c.keySize))
            switch method {
            case .random:
                let mean = points.mean(alongAxis: 0)
                let deviation = ((points - mean) * (points - mean)).mean(alongAxis: 0).map { $0.squareRoot() }
                setKeys(head: h, Tensor.normal(shape: [c.keysPerHead, c.keySize], generator: &generator) * deviation + mean)
            case .kMeans(let iterations):
                let (centroids, fractions) = kMeans(points, iterations: iterations, generator: &generator)
                setKeys(head: h, centroids)
                usage.replaceSubrange((h * c.keysPerHead)..<((h + 1) * c.keysPerHead), with: fractions)
            }
        }
        self.usage = usage
        keyState = .initialized
    }

    /// Refines the keys by exponential moving averages on `data` (`[n, d]`
    /// unlabelled features): per batch, each key's usage `u` and position move
    /// to `u' = decay u + (1 - decay) m / B` and `(decay u key + (1 - decay) s / B) / u'`,
    /// where `m` examples with head vectors summing to `s` selected it; a key
    /// no example selects keeps its position. Dead keys are then replaced (see
    /// `KeyRefinement.deadCodeThreshold`).
    /// - Returns: the number of key replacements.
    /// - Throws: `keysNotReady` before initialisation, `keysFrozen` after freezing, `featureSizeMismatch`.
    @discardableResult
    public func refineKeys(data: Tensor, settings: KeyRefinement = KeyRefinement(), generator: inout SeededGenerator) throws -> Int {
        switch keyState {
        case .uninitialized: throw KeyValueBottleneckError.keysNotReady(operation: "refine the keys", state: keyState)
        case .frozen: throw KeyValueBottleneckError.keysFrozen
        case .initialized: break
        }
        try checkFeatures(data)
        guard settings.epochs >= 0, settings.batchSize > 0, settings.decay >= 0, settings.decay < 1, settings.deadCodeThreshold >= 0 else {
            throw KeyValueBottleneckError.invalidConfiguration(
                "key refinement needs epochs >= 0, batch size > 0, decay in [0, 1) and threshold >= 0, got \(settings)")
        }
        let c = configuration, n = data.shape[0]
        let (K, k) = (c.keysPerHead, c.keySize)
        var usage = self.usage ?? [Float](repeating: 1 / Float(K), count: c.heads * K)
        let (decay, deadBelow) = (settings.decay, settings.deadCodeThreshold / Float(K))
        var replaced = 0
        for _ in 0..<settings.epochs {
            let order = (0..<n).shuffled(using: &generator)
            for start in stride(from: 0, to: n, by: settings.batchSize) {
                let batch = Array(order[start..<min(start + settings.batchSize, n)])
                let split = splitHeads(data.gatherRows(batch))
                let share = (1 - decay) / Float(batch.count)
                for h in 0..<c.heads {
                    let points = split.slice(alongAxis: 1, (h * k)..<((h + 1) * k))
                    var table = headKeys(h)
                    var counts = [Float](repeating: 0, count: K), sums = [Float](repeating: 0, count: K * k)
                    for (row, key) in Tensor.nearestNeighbors(of: points, in: table).indices.enumerated() {
                        counts[key] += 1
                        for j in 0..<k { sums[key * k + j] += points.scalars[row * k + j] }
                    }
                    for key in 0..<K {
                        let old = usage[h * K + key], new = decay * old + share * counts[key]
                        if counts[key] > 0 {
                            for j in 0..<k {
                                table.scalars[key * k + j] = (decay * old * table.scalars[key * k + j] + share * sums[key * k + j]) / new
                            }
                        }
                        usage[h * K + key] = new
                        if new < deadBelow {
                            let row = Int(generator.next() % UInt64(batch.count))
                            table.scalars.replaceSubrange((key * k)..<((key + 1) * k), with: points.scalars[(row * k)..<((row + 1) * k)])
                            usage[h * K + key] = 1 / Float(K)
                            replaced += 1
                        }
                    }
                    setKeys(head: h, table)
                }
            }
        }
        self.usage = usage
        return replaced
    }

    /// Fixes the keys for good; values can then be trained and predictions made.
    /// - Throws: `keysNotReady` if they were never initialised.
    public func freezeKeys() throws {
        guard keyState != .uninitialized else { throw KeyValueBottleneckError.keysNotReady(operation: "freeze the keys", state: keyState) }
        keyState = .frozen
        usage = nil
        trainedValues = [Bool](repeating: false, count: trainedValues.count)
    }

    // MARK: Lookup and output

    /// The nearest key of every head for every row of `features` (`[n, d]`).
    /// - Throws: `keysNotReady` unless the keys are frozen; `featureSizeMismatch`.
    public func codes(for features: Tensor) throws -> KeyCodes {
        guard keyState == .frozen else {
            throw KeyValueBottleneckError.keysNotReady(operation: "look up keys for training or prediction", state: keyState)
        }
        try checkFeatures(features)
        let c = configuration, n = features.shape[0]
        let tables = (0..<c.heads).map(headKeys)
        var indices = [Int](repeating: 0, count: n * c.heads)
        for start in stride(from: 0, to: n, by: 1024) {
            let end = min(start + 1024, n)
            let split = splitHeads(features.slice(alongAxis: 0, start..<end))
            for h in 0..<c.heads {
                let points = split.slice(alongAxis: 1, (h * c.keySize)..<((h + 1) * c.keySize))
                for (row, key) in Tensor.nearestNeighbors(of: points, in: tables[h]).indices.enumerated() {
                    indices[(start + row) * c.heads + h] = h * c.keysPerHead + key
                }
            }
        }
        return KeyCodes(indices: indices, heads: c.heads, keysPerHead: c.keysPerHead)
    }

    /// Marks the values `codes` select as trained (see `trainedValues`); training calls it for every batch.
    public func recordTraining(_ codes: KeyCodes) {
        for index in codes.indices { trainedValues[index] = true }
    }

    /// The outputs `[n, outputSize]` for `codes`, recording on `tape` if given.
    /// Without a tape (inference), once some value has been trained, each row
    /// averages only over the heads whose selected value was trained (a row with
    /// none scores 0 everywhere).
    public func logits(_ codes: KeyCodes, tape: Tape? = nil) -> Variable {
        let table = tape?.variable(values) ?? Variable(values.value)
        guard tape == nil, skipsUntrainedValues, trainedValues.contains(true) else { return logits(codes, values: table, tape: tape) }
        return logits(codes, values: table, weights: headWeights(codes), tape: nil)
    }

    /// The outputs for `codes` computed from the given values table (`[C K, dv]`),
    /// the plain mean over heads, so that gradients with respect to it can be checked directly.
    public func logits(_ codes: KeyCodes, values table: Variable, tape: Tape? = nil) -> Variable {
        logits(codes, values: table, weights: nil, tape: tape)
    }

    /// The selected values weighted over heads by `weights` (`[n, C, 1]`; nil: the mean), then the decoder.
    private func logits(_ codes: KeyCodes, values table: Variable, weights: Tensor?, tape: Tape?) -> Variable {
        let c = configuration
        precondition(codes.heads == c.heads && codes.keysPerHead == c.keysPerHead,
                     "KeyValueBottleneck: codes of \(codes.heads) x \(codes.keysPerHead) keys for a \(c.heads) x \(c.keysPerHead) bottleneck")
        let selected = Variable.gatherRows(table, codes.indices).reshaped([codes.count, c.heads, c.valueSize])
        let pooled = weights.map { (selected * Variable($0)).sum(alongAxis: 1) } ?? selected.mean(alongAxis: 1)
        return decoder.map { $0(pooled, tape: tape) } ?? pooled
    }

    /// `[n, C, 1]`: for each row, `1 / t` at the `t` heads whose selected value was trained, 0 elsewhere.
    private func headWeights(_ codes: KeyCodes) -> Tensor {
        let heads = codes.heads
        var weights = codes.indices.map { trainedValues[$0] ? Float(1) : 0 }
        for row in 0..<codes.count {
            let trained = weights[(row * heads)..<((row + 1) * heads)].reduce(0, +)
            for h in 0..<heads where trained > 0 { weights[row * heads + h] /= trained }
        }
        return Tensor(shape: [codes.count, heads, 1], scalars: weights)
    }

    /// Mean cross-entropy of `codes` against class `labels` over all outputs.
    /// - Throws: `labelCountMismatch`, or `labelOutOfRange` for a label outside `0 ..< outputSize`.
    public func loss(_ codes: KeyCodes, labels: [Int], tape: Tape? = nil) throws -> Variable {
        guard labels.count == codes.count else {
            throw KeyValueBottleneckError.labelCountMismatch(labels: labels.count, examples: codes.count)
        }
        if let bad = labels.enumerated().first(where: { !(0..<configuration.outputSize).contains($0.element) }) {
            throw KeyValueBottleneckError.labelOutOfRange(label: bad.element, index: bad.offset, classes: configuration.outputSize)
        }
        return Variable.crossEntropy(logits: logits(codes, tape: tape), targets: labels)
    }

    /// The highest-scoring output of each row of `features`.
    public func predict(_ features: Tensor) throws -> [Int] { logits(try codes(for: features)).value.argmax() }

    // MARK: Saving

    /// Writes the configuration, key state and every parameter (values, keys,
    /// projection, decoder) as one HDF5 file, atomically.
    public func save(to path: String) throws {
        let configurationJSON = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        try HDF5File.writeAtomically(to: path) { file in
            try file.setAttribute(Self.format, named: "format")
            try file.setAttribute(configurationJSON, named: "config")
            try file.setAttribute(keyState.rawValue, named: "key_state")
            for (name, parameter) in namedParameters() { try file.write(parameter.value, at: name) }
            try file.write(Tensor(shape: [trainedValues.count], scalars: trainedValues.map { $0 ? 1 : 0 }), at: "trained_values")
        }
    }

    /// Loads a bottleneck written by `save(to:)`. A bottleneck saved before its
    /// keys were frozen restarts refinement with uniform key usage.
    /// - Throws: `notABottleneckFile`, or `ParameterLoadingError` for a missing or mis-shaped parameter.
    public static func load(from path: String) throws -> KeyValueBottleneck {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let found = (try? file.attribute(named: "format")) ?? "none"
        guard found == format else {
            throw KeyValueBottleneckError.notABottleneckFile(file: path, reason: "format attribute \"\(found)\", expected \"\(format)\"")
        }
        let configuration: KeyValueBottleneckConfiguration
        do {
            configuration = try JSONDecoder().decode(KeyValueBottleneckConfiguration.self, from: Data(try file.attribute(named: "config").utf8))
        } catch {
            throw KeyValueBottleneckError.notABottleneckFile(file: path, reason: "unreadable config attribute (\(error))")
        }
        let stateName = try file.attribute(named: "key_state")
        guard let state = KeyState(rawValue: stateName) else {
            throw KeyValueBottleneckError.notABottleneckFile(
                file: path, reason: "key_state \"\(stateName)\", expected uninitialized, initialized or frozen")
        }
        let bottleneck = try KeyValueBottleneck(configuration: configuration, seed: 0)
        try bottleneck.loadParameters { file.contains($0) ? try file.read($0) : nil }
        bottleneck.keyState = state
        if file.contains("trained_values") {
            let marks = try file.read("trained_values")
            guard marks.count == bottleneck.trainedValues.count else {
                throw KeyValueBottleneckError.notABottleneckFile(
                    file: path, reason: "trained_values holds \(marks.count) marks for \(bottleneck.trainedValues.count) values")
            }
            bottleneck.trainedValues = marks.scalars.map { $0 != 0 }
        }
        return bottleneck
    }

    // MARK: Helpers

    private func checkFeatures(_ features: Tensor) throws {
        guard features.rank == 2, features.shape[1] == configuration.inputSize else {
            throw KeyValueBottleneckError.featureSizeMismatch(expected: configuration.inputSize, found: features.shape)
        }
    }

    /// The head vectors of `features` side by side: `[n, C k]`.
    private func splitHeads(_ features: Tensor) -> Tensor {
        projection.map { Tensor.matmul(features, $0.value) } ?? features
    }

    private func headKeys(_ head: Int) -> Tensor {
        keys.value.slice(alongAxis: 0, head..<(head + 1)).reshaped([configuration.keysPerHead, configuration.keySize])
    }

    private func setKeys(head: Int, _ table: Tensor) {
        let size = configuration.keysPerHead * configuration.keySize
        keys.value.scalars.replaceSubrange((head * size)..<((head + 1) * size), with: table.scalars)
    }

    /// Lloyd's k-means of `points` (`[n, k]`, `n >= K`) into `K` centroids,
    /// with the fraction of points in each cluster at the last assignment.
    private func kMeans(_ points: Tensor, iterations: Int, generator: inout SeededGenerator) -> (centroids: Tensor, fractions: [Float]) {
        let (n, k, K) = (points.shape[0], configuration.keySize, configuration.keysPerHead)
        var centroids = points.gatherRows(Array((0..<n).shuffled(using: &generator).prefix(K)))
        var counts = [Float](repeating: Float(n) / Float(K), count: K)
        for _ in 0..<iterations {
            let assigned = Tensor.nearestNeighbors(of: points, in: centroids).indices
            counts = [Float](repeating: 0, count: K)
            var sums = [Float](repeating: 0, count: K * k)
            for (row, cluster) in assigned.enumerated() {
                counts[cluster] += 1
                for j in 0..<k { sums[cluster * k + j] += points.scalars[row * k + j] }
            }
            for cluster in 0..<K {
                let source = counts[cluster] > 0 ? sums[(cluster * k)..<((cluster + 1) * k)].map { $0 / counts[cluster] }
                    : Array(points.scalars[(Int(generator.next() % UInt64(n)) * k)...].prefix(k))
                centroids.scalars.replaceSubrange((cluster * k)..<((cluster + 1) * k), with: source)
            }
        }
        return (centroids, counts.map { $0 / Float(n) })
    }
}

/// A key-value bottleneck used or configured wrongly.
public enum KeyValueBottleneckError: Error, CustomStringConvertible, Equatable {
    /// A size that is not positive, chunks that do not tile the input, or bad key-refinement settings, described.
    case invalidConfiguration(String)
    /// `operation` needs keys in another state (initialised; frozen for lookups).
    case keysNotReady(operation: String, state: KeyState)
    /// The keys are frozen: they cannot be initialised or refined again.
    case keysFrozen
    /// Features whose shape (`found`) is not `[n, expected]`, the configuration's input size.
    case featureSizeMismatch(expected: Int, found: [Int])
    /// The label of example `index` is outside `0..<classes`, the bottleneck's outputs.
    case labelOutOfRange(label: Int, index: Int, classes: Int)
    /// `loss` got another number of labels than of examples.
    case labelCountMismatch(labels: Int, examples: Int)
    /// Key initialisation (`purpose`) needs more examples: one for random keys, one per key for k-means.
    case tooFewExamples(needed: Int, found: Int, purpose: String)
    /// `load` found a wrong `format` attribute, an unreadable configuration or key state, or mis-sized value marks.
    case notABottleneckFile(file: String, reason: String)

    /// A one-line message; for keys not ready, it names the calls that make them ready.
    public var description: String {
        switch self {
        case .invalidConfiguration(let detail): "invalid key-value bottleneck: \(detail)"
        case let .keysNotReady(operation, state):
            state == .uninitialized
                ? "cannot \(operation): the keys are not initialised; call initializeKeys (random or k-means on unlabelled features), "
                    + "optionally refineKeys, then freezeKeys"
                : "cannot \(operation): the keys are initialised but not frozen; call freezeKeys first"
        case .keysFrozen: "the keys are frozen; they cannot be initialised or refined again"
        case let .featureSizeMismatch(expected, found): "expected features of shape [n, \(expected)], found \(found)"
        case let .labelOutOfRange(label, index, classes): "label \(label) of example \(index) is outside 0..<\(classes) (the bottleneck's outputs)"
        case let .labelCountMismatch(labels, examples): "expected one label per example (\(examples)), found \(labels)"
        case let .tooFewExamples(needed, found, purpose): "\(purpose) needs at least \(needed) examples, found \(found)"
        case let .notABottleneckFile(file, reason): "\(file) is not a Graft key-value bottleneck: \(reason)"
        }
    }
}
