import GraftAutodiff
import GraftTensor

/// BERT's masked-LM head: dense + GELU + LayerNorm, then a decoder whose weight
/// is tied to the word embeddings, with its own bias
/// (`cls.predictions.transform.*`, `cls.predictions.bias`).
public final class MaskedLMHead: Module {
    /// The transform's `hidden` → `hidden` projection, followed by GELU (`transform.dense`).
    public let dense: Linear
    /// The transform's LayerNorm after GELU, epsilon `layer_norm_eps` (`transform.LayerNorm`).
    public let layerNorm: LayerNorm
    /// The word-embedding table, shared with the encoder (not listed as this head's parameter).
    public let decoderWeight: Parameter
    /// The decoder's own `[vocabulary]` bias, zero when fresh (`bias`).
    public let decoderBias: Parameter

    /// A freshly initialised head (dense `N(0, 0.02)`, LayerNorm identity, zero bias)
    /// tied to `encoder`'s word embeddings, or with a frozen decoder table of its own
    /// (`untiedDecoder`, `[vocabulary, hidden]`) when the checkpoint has one.
    public init(tiedTo encoder: TransformerEncoder, untiedDecoder: Tensor? = nil, generator: inout SeededGenerator) {
        let c = encoder.configuration
        dense = Linear(inputSize: c.hiddenSize, outputSize: c.hiddenSize, generator: &generator)
        layerNorm = LayerNorm(size: c.hiddenSize, epsilon: c.layerNormEpsilon)
        decoderWeight = untiedDecoder.map { Parameter($0, isTrainable: false) } ?? encoder.embeddings.word.weight
        decoderBias = Parameter(Tensor(zeros: [c.vocabularySize]))
    }

    /// The decoder's own table when it is not the word embeddings of `encoder`; nil when tied.
    public func untiedDecoder(of encoder: TransformerEncoder) -> Tensor? {
        decoderWeight === encoder.embeddings.word.weight ? nil : decoderWeight.value
    }

    /// Only the decoder's `bias`: the decoder weight is the encoder's word embeddings (or a frozen table) and is
    /// left out of the head's named parameters.
    public var localParameters: [(name: String, parameter: Parameter)] { [("bias", decoderBias)] }
    /// `transform.dense` and `transform.LayerNorm`, as in Hugging Face's `cls.predictions`.
    public var children: [(name: String, module: any Module)] {
        [("transform.dense", dense), ("transform.LayerNorm", layerNorm)]
    }

    /// The transformed hidden state before the decoder, `[rows, hidden]`
    /// (with the adapters' inverse transformation applied, if any).
    public func transform(_ hidden: Variable, context: ForwardContext) -> Variable {
        let states = layerNorm(dense(hidden, tape: context.tape).gelu(), tape: context.tape)
        return context.adapters?.beforeDecoder(states, context: context) ?? states
    }

    /// Vocabulary logits for transformed states, `[rows, vocabulary]`.
    public func decode(_ transformed: Variable, context: ForwardContext) -> Variable {
        Variable.linear(transformed, weight: context.variable(decoderWeight), bias: context.variable(decoderBias))
    }

    /// Logits at the given rows of `hidden` only (e.g. the masked positions), so
    /// the vocabulary GEMM is not run where no label needs it.
    public func callAsFunction(_ hidden: Variable, rows: [Int], context: ForwardContext) -> Variable {
        decode(transform(Variable.gatherRows(hidden, rows), context: context), context: context)
    }

    /// The masked-LM loss at the given rows of `hidden` against their `targets`:
    /// the decoder fused with the cross-entropy (`Variable.linearCrossEntropy`),
    /// so the `[rows, vocabulary]` logits are never held whole.
    ///
    /// `decoder` replaces the decoder's weight and bias, for example by their rows
    /// of a restricted output vocabulary; `targets` then index its rows.
    public func loss(_ hidden: Variable, rows: [Int], targets: [Int], context: ForwardContext,
                     decoder: (weight: Variable, bias: Variable)? = nil) -> Variable {
        let (weight, bias) = decoder ?? (context.variable(decoderWeight), context.variable(decoderBias))
        return Variable.linearCrossEntropy(transform(Variable.gatherRows(hidden, rows), context: context),
                                           weight: weight, bias: bias, targets: targets)
    }
}

/// How a sequence classifier summarises the tokens.
public enum Pooling: String, Codable, Sendable {
    /// The first token's hidden state (`[CLS]` / `<s>`).
    case first
    /// The mean over real tokens.
    case mean
}

/// A non-linearity: inside an adapter, or after the hidden layer of a classification head.
/// The raw values are the names Hugging Face and AdapterHub use (`swish` is SiLU; `gelu` the exact erf form).
public enum Activation: String, Codable, Sendable {
    /// `max(0, x)`; `x · sigmoid(x)`; `x · Φ(x)` (Φ the standard normal CDF); the hyperbolic tangent.
    case relu, swish, gelu, tanh

    /// The activation applied to each element of `x`.
    public func callAsFunction(_ x: Variable) -> Variable {
        switch self {
        case .relu: x.relu()
        case .swish: x.silu()
        case .gelu: x.gelu()
        case .tanh: x.tanh()
        }
    }
}

/// The layers of a classification head after what it reads: an optional hidden layer (`dense`,
/// `[hidden] -> [hidden]`, then its activation) and the `classifier` to class logits, with dropout
/// before each linear layer while training, in the order of AdapterHub's heads
/// (`Dropout, Linear, activation, Dropout, Linear`) and of RoBERTa's classification head.
public protocol ClassifierLayers: Module {
    /// The hidden layer and its activation; nil for a head of one linear layer.
    var hiddenLayer: (dense: Linear, activation: Activation)? { get }
    /// The linear layer to class logits.
    var classifier: Linear { get }
    /// The dropout probability before each linear layer while training.
    var dropout: Float { get }
}

extension ClassifierLayers {
    /// `dense` (when there is a hidden layer), then `classifier`: the parameters' names.
    public var classifierChildren: [(name: String, module: any Module)] {
        (hiddenLayer.map { [("dense", $0.dense as any Module)] } ?? []) + [("classifier", classifier)]
    }

    /// What the classifier reads for `features` (`[rows, hidden]`): the hidden layer's output, or `features`
    /// themselves when there is none.
    public func classifierInput(_ features: Variable, context: ForwardContext) -> Variable {
        guard let (dense, activation) = hiddenLayer else { return features }
        return activation(dense(context.dropout(features, probability: dropout), tape: context.tape))
    }

    /// `[rows, classes]` logits for `features` (`[rows, hidden]`).
    public func logits(_ features: Variable, context: ForwardContext) -> Variable {
        classifier(context.dropout(classifierInput(features, context: context), probability: dropout), tape: context.tape)
    }
}

/// A freshly initialised hidden layer (`[hidden] -> [hidden]`) with `activation`, or nil without one.
private func makeHiddenLayer(_ activation: Activation?, size: Int, generator: inout SeededGenerator) -> (dense: Linear, activation: Activation)? {
    activation.map { (Linear(inputSize: size, outputSize: size, generator: &generator), $0) }
}

/// Pooling, then dropout and a linear layer to class logits, with an optional hidden layer before it
/// (``ClassifierLayers``).
public final class SequenceClassificationHead: ClassifierLayers {
    /// The optional `[hidden] -> [hidden]` layer and its activation (`dense`); nil by default.
    public let hiddenLayer: (dense: Linear, activation: Activation)?
    /// The `[hidden] -> [classes]` layer to logits (`classifier`).
    public let classifier: Linear
    /// How the `[rows, hidden]` states are reduced to one `[hidden]` vector per example (default `.first`).
    public let pooling: Pooling
    /// The dropout probability before each linear layer while training (default 0.1).
    public let dropout: Float

    /// A freshly initialised head (`N(0, 0.02)` weights, zero biases); with a hidden layer of
    /// `hiddenActivation` (initialised first) when it is given.
    public init(hiddenSize: Int, classCount: Int, pooling: Pooling = .first, hiddenActivation: Activation? = nil, dropout: Float = 0.1,
                generator: inout SeededGenerator) {
        hiddenLayer = makeHiddenLayer(hiddenActivation, size: hiddenSize, generator: &generator)
        classifier = Linear(inputSize: hiddenSize, outputSize: classCount, generator: &generator)
        self.pooling = pooling
        self.dropout = dropout
    }

    /// `dense` (with a hidden layer) and `classifier` (``ClassifierLayers/classifierChildren``).
    public var children: [(name: String, module: any Module)] { classifierChildren }

    /// `[batch, hidden]` summaries of `[rows, hidden]` states, as the head reads them.
    public func pool(_ hidden: Variable, input: EncoderInput) -> Variable {
        switch pooling {
        case .first:
            firstTokens(hidden, input: input)
        case .mean:
            meanPool(hidden, input: input)
        }
    }

    /// `[batch, classes]` logits from `[rows, hidden]` states.
    public func callAsFunction(_ hidden: Variable, input: EncoderInput, context: ForwardContext) -> Variable {
        logits(pool(hidden, input: input), context: context)
    }
}

/// Dropout and a linear layer applied to every token, with an optional hidden layer before it
/// (``ClassifierLayers``).
public final class TokenClassificationHead: ClassifierLayers {
    /// The optional `[hidden] -> [hidden]` layer and its activation (`dense`); nil by default.
    public let hiddenLayer: (dense: Linear, activation: Activation)?
    /// The `[hidden] -> [classes]` layer to each token's logits (`classifier`).
    public let classifier: Linear
    /// The dropout probability before each linear layer while training (default 0.1).
    public let dropout: Float

    /// A freshly initialised head (`N(0, 0.02)` weights, zero biases); with a hidden layer of
    /// `hiddenActivation` (initialised first) when it is given.
    public init(hiddenSize: Int, classCount: Int, hiddenActivation: Activation? = nil, dropout: Float = 0.1,
                generator: inout SeededGenerator) {
        hiddenLayer = makeHiddenLayer(hiddenActivation, size: hiddenSize, generator: &generator)
        classifier = Linear(inputSize: hiddenSize, outputSize: classCount, generator: &generator)
        self.dropout = dropout
    }

    /// `dense` (with a hidden layer) and `classifier` (``ClassifierLayers/classifierChildren``).
    public var children: [(name: String, module: any Module)] { classifierChildren }

    /// `[rows, classes]` logits.
    public func callAsFunction(_ hidden: Variable, context: ForwardContext) -> Variable {
        logits(hidden, context: context)
    }
}
