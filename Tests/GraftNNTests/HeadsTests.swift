import GraftAutodiff
import GraftTensor
import Testing
@testable import GraftNN

/// Classification heads of one linear layer, or two with a hidden layer (AdapterHub's default classification head).
@Suite struct Heads {
    let states = Variable(Tensor(shape: [6, 4], scalars: (0..<24).map { Float($0 % 7) * 0.3 - 0.8 }))
    let input = EncoderInput(ids: [5, 6, 7, 5, 6, 1], attentionMask: [1, 1, 1, 1, 1, 0], batchSize: 2, length: 3)

    /// A head without a hidden layer has only `classifier`, initialised as before hidden layers existed (a
    /// linear layer drawn first from the generator); with one, `dense` comes first, by name and by draw.
    @Test func parametersAreNamedDenseThenClassifier() {
        var generator = SeededGenerator(seed: 7), reference = SeededGenerator(seed: 7)
        let plain = SequenceClassificationHead(hiddenSize: 4, classCount: 3, generator: &generator)
        #expect(plain.namedParameters().map(\.name) == ["classifier.weight", "classifier.bias"])
        #expect(plain.classifier.weight.value == Linear(inputSize: 4, outputSize: 3, generator: &reference).weight.value)
        (generator, reference) = (SeededGenerator(seed: 7), SeededGenerator(seed: 7))
        let twoLayers = TokenClassificationHead(hiddenSize: 4, classCount: 3, hiddenActivation: .gelu, generator: &generator)
        #expect(twoLayers.namedParameters().map(\.name) == ["dense.weight", "dense.bias", "classifier.weight", "classifier.bias"])
        #expect(twoLayers.hiddenLayer?.dense.weight.value == Linear(inputSize: 4, outputSize: 4, generator: &reference).weight.value)
        #expect(twoLayers.classifier.weight.value == Linear(inputSize: 4, outputSize: 3, generator: &reference).weight.value)
    }

    /// Logits are `classifier(activation(dense(x)))` of the first token (sequence) or of every token (token head),
    /// for each activation; while training, dropout comes before each linear layer, drawn in that order.
    @Test(arguments: [Activation.tanh, .relu, .gelu, .swish])
    func aHiddenLayerComesBeforeTheClassifier(activation: Activation) {
        var generator = SeededGenerator(seed: 3)
        let sequence = SequenceClassificationHead(hiddenSize: 4, classCount: 2, hiddenActivation: activation, dropout: 0.5, generator: &generator)
        let token = TokenClassificationHead(hiddenSize: 4, classCount: 3, hiddenActivation: activation, dropout: 0.5, generator: &generator)
        for head in [sequence, token] as [any ClassifierLayers] {
            for (_, parameter) in head.namedParameters() {
                parameter.value = .normal(shape: parameter.value.shape, standardDeviation: 0.5, generator: &generator)
            }
        }
        func manual(_ head: any ClassifierLayers, _ x: Variable, _ context: ForwardContext) -> Tensor {
            let dense = head.hiddenLayer!.dense
            return head.classifier(context.dropout(activation(dense(context.dropout(x, probability: 0.5))), probability: 0.5)).value
        }
        let first = sequence.pool(states, input: input)
        #expect(first.value == Tensor(shape: [2, 4], scalars: Array(states.value.scalars[0..<4] + states.value.scalars[12..<16])))
        for isTraining in [false, true] {
            let context = { ForwardContext(tape: nil, isTraining: isTraining, seed: 11) }
            #expect(sequence(states, input: input, context: context()).value == manual(sequence, first, context()))
            #expect(token(states, context: context()).value == manual(token, states, context()))
        }
        let evaluation = token(states, context: ForwardContext(tape: nil, isTraining: false, seed: 11)).value
        #expect(token(states, context: ForwardContext(tape: nil, isTraining: true, seed: 11)).value != evaluation)
    }
}
