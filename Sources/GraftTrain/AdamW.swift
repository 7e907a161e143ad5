import CKernels
import Foundation
import GraftAutodiff
import GraftTensor

/// A first-order optimizer over a fixed list of parameters.
public protocol Optimizer: AnyObject {
    /// The learning rate used by the next `step()`; schedules set it.
    var learningRate: Float { get set }
    /// Updates every parameter that has a gradient, then clears the gradients.
    func step()
}

/// Adam with decoupled weight decay (Loshchilov & Hutter), matching
/// `torch.optim.AdamW` (bias correction, PyTorch's defaults and update order).
public final class AdamW: Optimizer {
    /// The learning rate of the next step (``Trainer`` sets it from its ``LearningRateSchedule`` before each).
    public var learningRate: Float
    /// The moment decay rates, the denominator's epsilon, and the decoupled weight decay
    /// (each step scales the parameters by `1 - learningRate * weightDecay`).
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// The parameters updated, in the order of the moment estimates in ``state``.
    public let parameters: [Parameter]
    /// Steps taken so far.
    public private(set) var stepCount = 0
    private var firstMoments: [Tensor?]
    private var secondMoments: [Tensor?]
    /// Each parameter's position in `parameters`.
    private let indices: [ObjectIdentifier: Int]

    /// AdamW over `parameters` with PyTorch's defaults: learning rate `1e-3`, betas 0.9 and
    /// 0.999, epsilon `1e-8`, weight decay 0.01.
    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        firstMoments = Array(repeating: nil, count: parameters.count)
        secondMoments = Array(repeating: nil, count: parameters.count)
        indices = Dictionary(parameters.enumerated().map { (ObjectIdentifier($0.element), $0.offset) }, uniquingKeysWith: { first, _ in first })
    }

    /// The optimizer's state: steps taken and each parameter's moment estimates
    /// (`nil` before its first update), for checkpoints.
    public var state: (steps: Int, first: [Tensor?], second: [Tensor?]) {
        get { (stepCount, firstMoments, secondMoments) }
        set {
            precondition(newValue.first.count == parameters.count && newValue.second.count == parameters.count,
                         "AdamW.state: \(newValue.first.count) moments for \(parameters.count) parameters")
            (stepCount, firstMoments, secondMoments) = newValue
        }
    }

    /// Counts one step and updates every parameter that has a gradient, then drops its gradient.
    public func step() {
        let constants = beginStep()
        for index in parameters.indices { update(index, constants) }
    }

    /// One update fused with the backward pass that computes its gradients:
    /// `tape.backward(loss)`, updating each parameter and dropping its
    /// gradient as soon as that gradient is complete, so the gradients of the
    /// whole model are never held at once. The result equals `backward` then
    /// `step()`; there is no point to clip the global gradient norm in between.
    public func step(backward loss: Variable, on tape: Tape) {
        let constants = beginStep()
        tape.backward(loss) { parameter in
            if let index = self.indices[ObjectIdentifier(parameter)] { self.update(index, constants) }
        }
    }

    /// Counts the step and returns its constants.
    private func beginStep() -> graft_adamw_step {
        stepCount += 1
        // Bias corrections in Double, as PyTorch computes them on Python floats.
        let correction1 = 1 - pow(Double(beta1), Double(stepCount))
        let correction2Root = Float((1 - pow(Double(beta2), Double(stepCount))).squareRoot())
        let stepSize = Float(Double(learningRate) / correction1)
        return graft_adamw_step(decay: 1 - learningRate * weightDecay, beta1: beta1, beta2: beta2,
                                step_size: stepSize, correction2_root: correction2Root, epsilon: epsilon)
    }

    /// Updates parameter `index` if it has a gradient, then drops the gradient.
    private func update(_ index: Int, _ constants: graft_adamw_step) {
        let parameter = parameters[index]
        guard let grad = parameter.grad else { return }
        parameter.grad = nil
        var m = firstMoments[index] ?? Tensor(zeros: grad.shape)
        var v = secondMoments[index] ?? Tensor(zeros: grad.shape)
        firstMoments[index] = nil
        secondMoments[index] = nil
        parameter.value.scalars.withUnsafeMutableBufferPointer { p in
            m.scalars.withUnsafeMutableBufferPointer { m in
                v.scalars.withUnsafeMutableBufferPointer { v in
                    grad.scalars.withUnsafeBufferPointer { g in
                        withUnsafePointer(to: constants) { constants in
                            Parallel.forRanges(p.count) { r in
                                graft_adamw(p.baseAddress! + r.lowerBound, g.baseAddress! + r.lowerBound, m.baseAddress! + r.lowerBound,
                                            v.baseAddress! + r.lowerBound, r.count, constants)
                            }
                        }
                    }
                }
            }
        }
        firstMoments[index] = m
        secondMoments[index] = v
    }
}

/// Stochastic gradient descent with momentum, matching `torch.optim.SGD`
/// (the first step's buffer is the gradient; optional Nesterov; L2 weight decay).
public final class SGD: Optimizer {
    /// The learning rate of the next step.
    public var learningRate: Float
    /// The momentum factor (0: plain SGD), the fraction of each new gradient damped out of the
    /// momentum buffer, the L2 penalty added to the gradient, and whether to use Nesterov momentum.
    public let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    /// The parameters updated.
    public let parameters: [Parameter]
    private var buffers: [Tensor?]

    /// SGD over `parameters` with PyTorch's defaults: no momentum, dampening or weight decay,
    /// and no Nesterov.
    public init(parameters: [Parameter], learningRate: Float, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffers = Array(repeating: nil, count: parameters.count)
    }

    /// Updates every parameter that has a gradient, then clears its gradient.
    public func step() {
        for (index, parameter) in parameters.enumerated() {
            guard var direction = parameter.grad else { continue }
            if weightDecay != 0 { direction.add(parameter.value, scaledBy: weightDecay) }
            if momentum != 0 {
                var buffer: Tensor
                if let previous = buffers[index] {
                    buffer = previous * momentum
                    buffer.add(direction, scaledBy: 1 - dampening)
                } else {
                    buffer = direction
                }
                buffers[index] = buffer
                if nesterov { direction.add(buffer, scaledBy: momentum) } else { direction = buffer }
            }
            parameter.value.add(direction, scaledBy: -learningRate)
            parameter.grad = nil
        }
    }
}
