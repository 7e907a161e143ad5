import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor

/// Settings of a UniPT side network.
public struct UniPTConfiguration: Codable, Sendable, Equatable {
    /// `f`: the side network works at width `d / f` (default 2, as the reference).
    public var reductionFactor: Int
    /// Epsilon of the side network's LayerNorms (PyTorch's default).
    public var layerNormEpsilon: Float

    public init(reductionFactor: Int = 2, layerNormEpsilon: Float = 1e-5) {
        self.reductionFactor = reductionFactor
        self.layerNormEpsilon = layerNormEpsilon
    }

    /// The side network's width for a backbone of hidden size `hiddenSize`.
    public func width(hiddenSize: Int) -> Int { hiddenSize / reductionFactor }

    /// Throws `ConfigurationError` unless the side network has a positive width.
    public func validate(hiddenSize: Int) throws {
        guard reductionFactor >= 1, reductionFactor <= hiddenSize else {
            throw ConfigurationError("UniPT reduction factor must be in 1...\(hiddenSize) (the hidden size), got \(reductionFactor)")
        }
        guard layerNormEpsilon > 0 else {
            throw ConfigurationError("UniPT LayerNorm epsilon must be positive, got \(layerNormEpsilon)")
        }
    }
}

/// `LayerNorm(Linear(x))`: UniPT's projection of a hidden state, and its `Proj`.
public final class ProjectedNorm: Module {
    public let dense: Linear
    public let norm: LayerNorm

    init(inputSize: Int, outputSize: Int, epsilon: Float, generator: inout SeededGenerator) {
        dense = Linear(inputSize: inputSize, outputSize: outputSize, generator: &generator)
        norm = LayerNorm(size: outputSize, epsilon: epsilon)
    }

    public var children: [(name: String, module: any Module)] { [("dense", dense), ("norm", norm)] }

    func callAsFunction(_ x: Variable, tape: Tape?) -> Variable { norm(dense(x, tape: tape), tape: tape) }
}

/// UniPT (universal parallel tuning): a side network over the hidden states of
/// a frozen backbone that is run without a tape, so that training never
/// back-propagates through the backbone and keeps none of its activations.
///
/// With `t_i = LN_i(Linear_i(h_i))` (width `d' = d / f`) for every hidden state
/// (the embedding output and each layer's output) and the anchor `a = t_L` (the
/// last layer):
/// - parallel interaction, per example, for every earlier state `i < L`:
///   `W_i = l1norm_rows(relu(a t_iᵀ) * mask) + I`, `m_i = W_i t_i`
///   (`mask` zeroes the padding columns);
/// - confidence aggregation: `c_i = gate(meanpool(a) * meanpool(t_i))`
///   (means over real tokens), softmax over `i`, `m = Σ_i c_i m_i`;
/// - output `Up(ReLU(a + Proj(m)))`, `Proj` = Linear + LayerNorm, `Up` back
///   to `d`, per token: it replaces the backbone's final hidden states under a task head.
///
/// Parameter names: `project.I.dense.weight`, `project.I.norm.bias`, ...,
/// `gate.weight`, `proj.dense.weight`, `proj.norm.weight`, `up.weight`, `up.bias`.
/// Initialisation: every Linear `N(0, 0.02)` with zero bias, LayerNorms identity.
/// The gate has no bias: a shift common to all layers cancels in the softmax.
public final class UniPT: Module {
    /// The name `adapt train --method` gives this method.
    public static let method = "unipt"

    public let configuration: UniPTConfiguration
    /// The backbone's hidden size `d`.
    public let hiddenSize: Int
    /// How many hidden states the side network reads (backbone layers + 1).
    public let stateCount: Int
    public let projections: ModuleList<ProjectedNorm>
    public let gate: Linear
    public let proj: ProjectedNorm
    public let up: Linear

    /// A freshly initialised side network for `stateCount` hidden states of width `hiddenSize`.
    /// - Throws: `ConfigurationError` if the configuration does not fit, or there are fewer than two states.
    public init(hiddenSize: Int, stateCount: Int, configuration: UniPTConfiguration = UniPTConfiguration(), seed: UInt64) throws {
        try configuration.validate(hiddenSize: hiddenSize)
        guard stateCount >= 2 else {
            throw ConfigurationError("UniPT needs at least 2 hidden states (embeddings and one layer), got \(stateCount)")
        }
        self.configuration = configuration
        self.hiddenSize = hiddenSize
        self.stateCount = stateCount
        let width = configuration.width(hiddenSize: hiddenSize), epsilon = configuration.layerNormEpsilon
        var generator = SeededGenerator(seed: seed)
        projections = ModuleList((0..<stateCount).map { _ in
            ProjectedNorm(inputSize: hiddenSize, outputSize: width, epsilon: epsilon, generator: &generator)
        })
        gate = Linear(inputSize: width, outputSize: 1, bias: false, generator: &generator)
        proj = ProjectedNorm(inputSize: width, outputSize: width, epsilon: epsilon, generator: &generator)
        up = Linear(inputSize: width, outputSize: hiddenSize, generator: &generator)
    }

    /// A side network for every hidden state of `encoder`.
    public convenience init(for encoder: EncoderConfiguration, configuration: UniPTConfiguration = UniPTConfiguration(),
                            seed: UInt64) throws {
        try self.init(hiddenSize: encoder.hiddenSize, stateCount: encoder.layerCount + 1, configuration: configuration, seed: seed)
    }

    public var children: [(name: String, module: any Module)] {
        [("project", projections), ("gate", gate), ("proj", proj), ("up", up)]
    }

    /// The hidden states the side network reads: the embedding output and every
    /// layer's output of `encoder`, each `[batch * length, hidden]`, computed
    /// without a tape (constants: nothing of the backbone is kept for backward).
    public static func hiddenStates(of encoder: TransformerEncoder, input: EncoderInput) -> [Tensor] {
        encoder.hiddenStates(input, context: .inference()).map(\.value)
    }

    /// The side network's output, `[batch * length, hidden]`, from the backbone's
    /// hidden states (`stateCount` tensors of `[batch * length, hidden]`),
    /// recorded on `tape` if given.
    public func callAsFunction(_ states: [Tensor], input: EncoderInput, tape: Tape?) -> Variable {
        precondition(states.count == stateCount, "UniPT: expected \(stateCount) hidden states, got \(states.count)")
        let (batch, length) = (input.batchSize, input.length)
        let width = configuration.width(hiddenSize: hiddenSize)
        let projected = zip(projections.elements, states).map { projection, state in
            precondition(state.shape == [batch * length, hiddenSize],
                         "UniPT: hidden state \(state.shape) must be [\(batch * length), \(hiddenSize)]")
            return projection(Variable(state), tape: tape)
        }
        let anchor = projected.last!
        let anchor3D = anchor.reshaped([batch, length, width])
        let keys = Variable(Tensor(shape: [batch, 1, length], scalars: input.attentionMask.map { Float($0) }))
        let pooledAnchor = meanPool(anchor, input: input)
        var messages: [Variable] = [], confidences: [Variable] = []
        for state in projected.dropLast() {
            let tokens = state.reshaped([batch, length, width])
            let scores = Variable.matmul(anchor3D, tokens, transposeB: true).relu() * keys
            let weights = scores / (scores.sum(alongAxis: 2, keepingDimension: true) + 1e-12)
            messages.append(Variable.matmul(weights, tokens) + tokens)  // (W_i + I) t_i
            confidences.append(gate(pooledAnchor * meanPool(state, input: input), tape: tape))
        }
        let confidence = Variable.concatenate(confidences, alongAxis: 1).softmax()  // [batch, L]
        var mixed = messages[0] * confidence.slice(alongAxis: 1, 0..<1).reshaped([batch, 1, 1])
        for i in 1..<messages.count {
            mixed = mixed + messages[i] * confidence.slice(alongAxis: 1, i..<(i + 1)).reshaped([batch, 1, 1])
        }
        let fused = (anchor3D + proj(mixed, tape: tape)).relu().reshaped([batch * length, width])
        return up(fused, tape: tape)
    }

    /// The side network's output for `input`: the backbone runs once without a
    /// tape, then the side network runs on `tape`.
    public func callAsFunction(_ encoder: TransformerEncoder, input: EncoderInput, tape: Tape?) -> Variable {
        self(UniPT.hiddenStates(of: encoder, input: input), input: input, tape: tape)
    }
}

/// A trained UniPT side network as one HDF5 file, with its task head and the
/// identity of the backbone it was trained on. Layout: root attributes
/// `format` (`graft-unipt/1`), `unipt_config` (JSON), `state_count`,
/// `hidden_size`, `backbone_name`, `backbone_checksum` and, with a head,
/// `head_config` (as adapter checkpoints); weights under `side/NAME` and `head/NAME`.
public struct UniPTCheckpoint {
    /// The value of the `format` attribute.
    public static let format = "graft-unipt/1"

    public var side: UniPT
    public var headConfiguration: HeadConfiguration?
    public var head: (any Module)?
    public var backboneName: String
    public var backboneChecksum: String

    /// A checkpoint of `side` (and `head`, made by `headConfiguration`) trained on `backbone`.
    /// - Throws: `AdapterCheckpointError.invalid` if the side network does not fit
    ///   the backbone, or only one of `head` and `headConfiguration` is given.
    public init(side: UniPT, head: (any Module)? = nil, headConfiguration: HeadConfiguration? = nil, backbone: Backbone) throws {
        let c = backbone.configuration
        guard side.hiddenSize == c.hiddenSize, side.stateCount == c.layerCount + 1 else {
            throw AdapterCheckpointError.invalid(source: "UniPT side network", detail:
                "it reads \(side.stateCount) states of width \(side.hiddenSize); the backbone has \(c.layerCount + 1) of width \(c.hiddenSize)")
        }
        guard (head == nil) == (headConfiguration == nil) else {
            throw AdapterCheckpointError.invalid(source: "UniPT side network", detail: "give both a head and its configuration, or neither")
        }
        self.side = side
        self.head = head
        self.headConfiguration = headConfiguration
        backboneName = backbone.name
        backboneChecksum = backbone.checksum
    }

    /// Writes the file atomically (a temporary file renamed into place).
    public func save(to path: String) throws {
        try writeAtomically(to: path) { temporary in
            let file = try HDF5File(path: temporary, mode: .create)
            defer { file.close() }
            var attributes = [
                "format": Self.format, "unipt_config": try AdapterCheckpoint.json(side.configuration),
                "state_count": String(side.stateCount), "hidden_size": String(side.hiddenSize),
                "backbone_name": backboneName, "backbone_checksum": backboneChecksum,
            ]
            if let headConfiguration { attributes["head_config"] = try AdapterCheckpoint.json(headConfiguration) }
            for (key, value) in attributes.sorted(by: { $0.key < $1.key }) { try file.setAttribute(value, named: key) }
            for (name, parameter) in side.namedParameters() { try file.write(parameter.value, at: "side/" + name) }
            for (name, parameter) in head?.namedParameters() ?? [] { try file.write(parameter.value, at: "head/" + name) }
        }
    }

    /// Loads a checkpoint for `backbone`, which must be the one it was trained on (same checksum).
    /// - Throws: `AdapterCheckpointError` naming the file and what does not match
    ///   (format, backbone, a missing, unexpected or mis-shaped weight).
    public static func load(from path: String, backbone: Backbone) throws -> UniPTCheckpoint {
        let file = try HDF5File(path: path, mode: .read)
        defer { file.close() }
        let found = (try? file.attribute(named: "format")) ?? "none"
        guard found == format else {
            throw AdapterCheckpointError.invalid(source: path, detail: "not a UniPT checkpoint: expected format attribute \"\(format)\", found \"\(found)\"")
        }
        let checksum = try file.attribute(named: "backbone_checksum")
        guard checksum == backbone.checksum else {
            throw AdapterCheckpointError.backboneMismatch(source: path, trainedOn: try file.attribute(named: "backbone_name"), trainedChecksum: checksum,
                                                          given: backbone.name, givenChecksum: backbone.checksum)
        }
        func decode<T: Decodable>(_ type: T.Type, _ attribute: String) throws -> T {
            do {
                return try JSONDecoder().decode(type, from: Data(try file.attribute(named: attribute).utf8))
            } catch let error as HDF5Error {
                throw error
            } catch {
                throw AdapterCheckpointError.invalid(source: path, detail: "attribute \(attribute) cannot be decoded: \(error)")
            }
        }
        let side: UniPT
        do {
            side = try UniPT(for: backbone.configuration, configuration: try decode(UniPTConfiguration.self, "unipt_config"), seed: 0)
        } catch let error as ConfigurationError {
            throw AdapterCheckpointError.invalid(source: path, detail: "\(error)")
        }
        let headConfiguration = try file.attributeNames().contains("head_config") ? try decode(HeadConfiguration.self, "head_config") : nil
        let head = headConfiguration?.makeHead(backbone: backbone, seed: 0)
        let stored = try file.datasetNames()
        try read(side, part: "side", from: file, stored: stored)
        if let head {
            try read(head, part: "head", from: file, stored: stored)
        } else if let extra = stored.first(where: { $0.hasPrefix("head/") }) {
            throw AdapterCheckpointError.unexpectedWeights(source: path, part: "head", names: [String(extra.dropFirst(5))])
        }
        return try UniPTCheckpoint(side: side, head: head, headConfiguration: headConfiguration, backbone: backbone)
    }

    /// Loads `module`'s weights from `part/NAME`, requiring exactly its names and shapes.
    private static func read(_ module: any Module, part: String, from file: HDF5File, stored: [String]) throws {
        let prefix = part + "/"
        let expected = Set(module.namedParameters().map(\.name))
        let present = Set(stored.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) })
        let missing = expected.subtracting(present).sorted(), unexpected = present.subtracting(expected).sorted()
        guard missing.isEmpty else { throw AdapterCheckpointError.missingWeights(source: file.path, part: part, names: missing) }
        guard unexpected.isEmpty else { throw AdapterCheckpointError.unexpectedWeights(source: file.path, part: part, names: unexpected) }
        for (name, parameter) in module.namedParameters() {
            let shape = try file.shape(of: prefix + name)
            guard shape == parameter.value.shape else {
                throw AdapterCheckpointError.shapeMismatch(source: file.path, name: prefix + name, expected: parameter.value.shape, found: shape)
            }
            parameter.value = try file.read(prefix + name)
        }
    }
}
