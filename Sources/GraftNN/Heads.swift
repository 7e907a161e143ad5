import GraftAutodiff
import GraftTensor

/// BERT's masked-LM head: dense + GELU + LayerNorm, then a decoder whose weight
/// is tied to the word embeddings, with its own bias
/// (`cls.predictions.transform.*`, `cls.predictions.bias`).
public final class MaskedLMHead: Module {
    public let dense: Linear
    public let layerNorm: LayerNorm
    /// The word-embedding table, shared with the encoder (not listed as this head's parameter).
    public let decoderWeight: Parameter
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

    public var localParameters: [(name: String, parameter: Parameter)] { [("bias", decoderBias)] }
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

/// Pooling, dropout and a linear layer to class logits.
public final class SequenceClassificationHead: Module {
    public let classifier: Linear
    public let pooling: Pooling
    public let dropout: Float

    public init(hiddenSize: Int, classCount: Int, pooling: Pooling = .first, dropout: Float = 0.1,
                generator: inout SeededGenerator) {
        classifier = Linear(inputSize: hiddenSize, outputSize: classCount, generator: &generator)
        self.pooling = pooling
        self.dropout = dropout
    }

    public var children: [(name: String, module: any Module)] { [("classifier", classifier)] }

    /// `[batch, hidden]` summaries of `[batch * length, hidden]` states, as the classifier reads them.
    public func pool(_ hidden: Variable, input: EncoderInput) -> Variable {
        switch pooling {
        case .first:
            hidden.reshaped([input.batchSize, input.length, -1]).slice(alongAxis: 1, 0..<1).reshaped([input.batchSize, -1])
        case .mean:
            meanPool(hidden, input: input)
        }
    }

    /// `[batch, classes]` logits from `[batch * length, hidden]` states.
    public func callAsFunction(_ hidden: Variable, input: EncoderInput, context: ForwardContext) -> Variable {
        classifier(context.dropout(pool(hidden, input: input), probability: dropout), tape: context.tape)
    }
}

/// Dropout and a linear layer applied to every token.
public final class TokenClassificationHead: Module {
    public let classifier: Linear
    public let dropout: Float

    public init(hiddenSize: Int, classCount: Int, dropout: Float = 0.1, generator: inout SeededGenerator) {
        classifier = Linear(inputSize: hiddenSize, outputSize: classCount, generator: &generator)
        self.dropout = dropout
    }

    public var children: [(name: String, module: any Module)] { [("classifier", classifier)] }

    /// `[batch * length, classes]` logits.
    public func callAsFunction(_ hidden: Variable, context: ForwardContext) -> Variable {
        classifier(context.dropout(hidden, probability: dropout), tape: context.tape)
    }
}
