import GraftAutodiff
import GraftNN
import GraftTensor

/// One trained (or trainable) adapter: a module of its own parameters that
/// acts at some of the encoder's attachment points.
///
/// Sub-layer adapters transform a *stream* `u` that starts at `x + h` (the
/// residual input plus the sub-layer's dense output) and ends as
/// `LayerNorm(u)`; each adapter adds its output to the stream. Linear-slot
/// adapters (LoRA, MoS) add a delta to a frozen linear layer's output.
public protocol Adapter: Module {
    /// The method's name (`seq_bn`, `lora`, ...), as in configuration files.
    var method: String { get }
    /// The delta this adapter adds to linear slot `slot` of block `layer`, or
    /// `nil` if it does not act there.
    func linearDelta(_ slot: LinearSlot, layer: Int, input: Variable, context: ForwardContext) -> Variable?
    /// The stream after this adapter at a sub-layer, or `nil` if it does not act
    /// there. `residual` is the sub-layer's residual input `x`, `stream` the stream `u` so far.
    func subLayerStep(_ subLayer: SubLayer, layer: Int, residual x: Variable, stream u: Variable, layerNorm: LayerNorm,
                      context: ForwardContext) -> Variable?
    /// The invertible block on the embeddings (MAD-X), if any.
    var invertible: InvertibleBlock? { get }
    /// The points of the encoder where this adapter acts.
    var attachmentPoints: Set<AttachmentPoint> { get }
}

/// An adapter that replaces the encoder's final hidden states with its own
/// output, computed from the frozen encoder run without a tape (a side network,
/// UniPT): training never back-propagates through the backbone. It acts at no
/// attachment point and composes with no other adapter.
public protocol SideNetworkAdapter: Adapter {
    /// The final hidden states, `[batch * length, hidden]`, for `input`.
    func output(of encoder: TransformerEncoder, input: EncoderInput, context: ForwardContext) -> Variable
}

/// An adapter that acts only by changing frozen linear weights, `W + ΔW`
/// (LoRA, MoS), so that its update can be folded into the weights.
public protocol MergeableAdapter: Adapter {
    /// The scaled update `ΔW` (`[out, in]`) of every linear slot it acts on.
    func weightDeltas() -> [(layer: Int, slot: LinearSlot, delta: Tensor)]
    /// Plain LoRA factors that compute exactly what this adapter computes (for export to peft).
    func asLoRA() -> LoRAAdapter
}

extension MergeableAdapter {
    /// Adds `sign · ΔW` to the weights of `encoder`.
    func fold(into encoder: TransformerEncoder, sign: Float) {
        for (layer, slot, delta) in weightDeltas() {
            encoder.linear(slot, layer: layer).weight.value.add(delta, scaledBy: sign)
        }
    }
}

/// A place in an encoder where adapters act.
public enum AttachmentPoint: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// A linear layer of block `layer` (where LoRA and MoS act).
    case linear(layer: Int, LinearSlot)
    /// A residual sub-layer of block `layer`, where its dense output meets the residual (where bottleneck adapters act).
    case subLayer(layer: Int, SubLayer)

    /// `layer.N.SLOT` or `layer.N.SUB_LAYER` (`layer.3.query`, `layer.3.feed_forward`), as in fusion parameter names.
    public var description: String {
        switch self {
        case let .linear(layer, slot): "layer.\(layer).\(slot.rawValue)"
        case let .subLayer(layer, subLayer): "layer.\(layer).\(subLayer.rawValue)"
        }
    }

    /// Orders points by `description`, as strings (so `layer.10` sorts before `layer.2`).
    public static func < (a: AttachmentPoint, b: AttachmentPoint) -> Bool { a.description < b.description }
}

extension Adapter {
    /// By default `nil`: the adapter acts at no linear slot.
    public func linearDelta(_ slot: LinearSlot, layer: Int, input: Variable, context: ForwardContext) -> Variable? { nil }
    /// By default `nil`: the adapter acts at no sub-layer.
    public func subLayerStep(_ subLayer: SubLayer, layer: Int, residual x: Variable, stream u: Variable, layerNorm: LayerNorm,
                             context: ForwardContext) -> Variable? { nil }
    /// By default `nil`: no invertible block on the embeddings.
    public var invertible: InvertibleBlock? { nil }

    /// The number of scalars in this adapter's parameters (all of them: a frozen adapter counts the same).
    public var parameterCount: Int { namedParameters().reduce(0) { $0 + $1.parameter.value.count } }
}

/// A down projection, a non-linearity and an up projection: `Up(act(Down(x)))`.
public final class BottleneckBlock: Module {
    /// The down projection, weight `[bottleneck, in]` with bias.
    public let down: Linear
    /// The up projection, weight `[out, bottleneck]` with bias (`out` is the input size unless given).
    public let up: Linear
    /// The non-linearity between the two projections.
    public let activation: Activation

    init(inputSize: Int, bottleneckSize: Int, outputSize: Int? = nil, activation: Activation,
         initialization: BottleneckInitialization, generator: inout SeededGenerator) {
        let outputSize = outputSize ?? inputSize
        switch initialization {
        case .bert:
            down = Linear(inputSize: inputSize, outputSize: bottleneckSize, generator: &generator)
            up = Linear(inputSize: bottleneckSize, outputSize: outputSize, generator: &generator)
        case .nearIdentity:
            let bound = 1 / Float(inputSize).squareRoot()
            down = Linear(weight: .uniform(shape: [bottleneckSize, inputSize], low: -bound, high: bound, generator: &generator),
                          bias: Tensor(zeros: [bottleneckSize]))
            up = Linear(weight: Tensor(zeros: [outputSize, bottleneckSize]), bias: Tensor(zeros: [outputSize]))
        }
        self.activation = activation
    }

    /// `down` and `up`: parameters `down.weight`, `down.bias`, `up.weight`, `up.bias`.
    public var children: [(name: String, module: any Module)] { [("down", down), ("up", up)] }

    /// `up(activation(down(x)))`: the bottleneck's output for rows `x`, without a residual.
    public func callAsFunction(_ x: Variable, context: ForwardContext) -> Variable {
        up(activation(down(x, tape: context.tape)), tape: context.tape)
    }
}

/// How bottleneck projections start.
public enum BottleneckInitialization: String, Codable, Sendable {
    /// Both projections `N(0, 0.02)`, zero biases (the reference's "bert").
    case bert
    /// Down projection Kaiming-uniform, up projection zero: the adapter starts as the identity.
    case nearIdentity = "near_identity"
}
