import Foundation
import GraftAutodiff
import GraftIO
import GraftNN
import GraftTensor

/// Settings of a UniPT side network.
public struct UniPTConfiguration: AdapterMethodSettings {
    /// `f`: the side network works at width `d / f` (default 2, as the reference).
    public var reductionFactor: Int
    /// Epsilon of the side network's LayerNorms (PyTorch's default).
    public var layerNormEpsilon: Float

    /// Settings with reduction factor `f` (default 2) and LayerNorm epsilon (default `1e-5`).
    public init(reductionFactor: Int = 2, layerNormEpsilon: Float = 1e-5) {
        self.reductionFactor = reductionFactor
        self.layerNormEpsilon = layerNormEpsilon
    }

    /// The side network's width for a backbone of hidden size `hiddenSize`.
    public func width(hiddenSize: Int) -> Int { hiddenSize / reductionFactor }

    /// `unipt`.
    public var method: String { "unipt" }

    /// `--reduction-factor` (a whole number for UniPT).
    public static let options: Set<AdapterOption> = [.reductionFactor]

    /// - Throws: `ConfigurationError` for a reduction factor that is not a whole number.
    public func applying(_ overrides: AdapterOverrides) throws -> UniPTConfiguration {
        var settings = self
        if let factor = overrides.reductionFactor {
            guard factor >= 1, factor == factor.rounded(), factor <= Float(Int32.max) else {
                throw ConfigurationError("the reduction factor of unipt must be a whole number >= 1, got \(factor)")
            }
            settings.reductionFactor = Int(factor)
        }
        return settings
    }

    /// Throws `ConfigurationError` unless the side network fits `model`'s hidden size (see `validate(hiddenSize:)`).
    public func validate(model: EncoderConfiguration) throws {
        try validate(hiddenSize: model.hiddenSize)
    }

    /// A freshly initialised `UniPT` side network over every hidden state of a model of this shape, drawn from `seed`.
    /// - Throws: `ConfigurationError` if these settings do not fit the model.
    public func makeAdapter(model: EncoderConfiguration, seed: UInt64) throws -> any Adapter {
        try UniPT(for: model, configuration: self, seed: seed)
    }

    /// Trainable parameters: a `Linear(d -> d')` + LayerNorm per hidden state (`L + 1` of them), the gate
    /// (`d'`, no bias), `Proj` (`Linear(d' -> d')` + LayerNorm) and `Up` (`Linear(d' -> d)`), `d' = d / f`.
    public func parameterCount(model: EncoderConfiguration) -> Int {
        let (d, w) = (model.hiddenSize, width(hiddenSize: model.hiddenSize))
        let projectedNorm = { (inputs: Int) in inputs * w + w + 2 * w }
        return (model.layerCount + 1) * projectedNorm(d) + w + projectedNorm(w) + w * d + d
    }

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
    /// The projection, weight `[out, in]` with bias.
    public let dense: Linear
    /// The LayerNorm on the projection's output (the configuration's epsilon).
    public let norm: LayerNorm

    init(inputSize: Int, outputSize: Int, epsilon: Float, generator: inout SeededGenerator) {
        dense = Linear(inputSize: inputSize, outputSize: outputSize, generator: &generator)
        norm = LayerNorm(size: outputSize, epsilon: epsilon)
    }

    /// `dense` and `norm`: parameters `dense.weight`, `dense.bias`, `norm.weight`, `norm.bias`.
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
public final class UniPT: SideNetworkAdapter {
    /// The settings this side network was made from: reduction factor and LayerNorm epsilon.
    public let configuration: UniPTConfiguration
    /// The backbone's hidden size `d`.
    public let hiddenSize: Int
    /// How many hidden states the side network reads (backbone layers + 1).
    public let stateCount: Int
    /// `LN_i(Linear_i(·))`, `d -> d'`: one per hidden state, embedding output first (`project.I`).
    public let projections: ModuleList<ProjectedNorm>
    /// The confidence gate, `d' -> 1`, without bias.
    public let gate: Linear
    /// `Proj`, `d' -> d'` Linear + LayerNorm on the aggregated message `m`.
    public let proj: ProjectedNorm
    /// `Up`, `d' -> d` with bias: back to the backbone's hidden size.
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

    /// `project` (the projections, `project.0` ...), `gate`, `proj` and `up`.
    public var children: [(name: String, module: any Module)] {
        [("project", projections), ("gate", gate), ("proj", proj), ("up", up)]
    }

    /// `unipt`.
    public var method: String { configuration.method }

    /// None: the side network reads the encoder's hidden states and replaces its output.
    public var attachmentPoints: Set<AttachmentPoint> { [] }

    /// The side network's output for `input`, `[batch * length, hidden]`: the backbone runs without a tape,
    /// the side network in `context`.
    public func output(of encoder: TransformerEncoder, input: EncoderInput, context: ForwardContext) -> Variable {
        self(encoder, input: input, context: context)
    }

    /// The hidden states the side network reads: the embedding output and every
    /// layer's output of `encoder`, each `[batch * length, hidden]`, computed
    /// without a tape (constants: nothing of the backbone is kept for backward).
    public static func hiddenStates(of encoder: TransformerEncoder, input: EncoderInput) -> [Tensor] {
        encoder.hiddenStates(input, context: .inference()).map(\.value)
    }

    /// The side network's output, `[batch * length, hidden]`, from the backbone's
    /// hidden states (`stateCount` tensors of `[batch * length, hidden]`),
    /// recorded on the context's tape if it has one.
    public func callAsFunction(_ states: [Tensor], input: EncoderInput, context: ForwardContext) -> Variable {
        let tape = context.tape
        precondition(states.count == stateCount, "UniPT: expected \(stateCount) hidden states, got \(states.count)")
        precondition(!input.isPacked, "UniPT: the side network needs a padded batch, not a packed one")
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
    /// tape, then the side network runs in `context`.
    public func callAsFunction(_ encoder: TransformerEncoder, input: EncoderInput, context: ForwardContext) -> Variable {
        self(UniPT.hiddenStates(of: encoder, input: input), input: input, context: context)
    }
}
