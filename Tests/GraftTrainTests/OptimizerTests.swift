import Foundation
import GraftAutodiff
import GraftNN
import GraftTensor
import Testing
@testable import GraftTrain

/// Trajectories recorded from PyTorch by `Fixtures/make_optimizer_trajectories.py`.
struct Trajectories: Decodable {
    struct Case: Decodable {
        let params: [[Float]]
        let learning_rates: [Double]
    }
    let p0: [Float], c: [Float], w: [Float]
    let cases: [String: Case]

    static func load() throws -> Trajectories {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/optimizer_trajectories", withExtension: "json"))
        return try JSONDecoder().decode(Trajectories.self, from: Data(contentsOf: url))
    }
}

@Suite struct OptimizersMatchPyTorch {
    /// Replays a case: the same hand-computed gradient `2 w (p - c)` in Float32,
    /// the schedule applied before each step, compared after every step.
    func replay(_ name: String, schedule: LearningRateSchedule, baseRate: Float,
                makeOptimizer: ([Parameter]) -> any Optimizer) throws {
        let fixture = try Trajectories.load()
        let expected = try #require(fixture.cases[name])
        let n = fixture.p0.count
        let parameter = Parameter(Tensor(shape: [n], scalars: fixture.p0))
        let c = Tensor(shape: [n], scalars: fixture.c), w = Tensor(shape: [n], scalars: fixture.w)
        let optimizer = makeOptimizer([parameter])
        for (step, want) in expected.params.enumerated() {
            optimizer.learningRate = schedule.learningRate(base: baseRate, at: step)
            #expect(abs(Double(optimizer.learningRate) - expected.learning_rates[step]) < 1e-7, "\(name) step \(step) learning rate")
            parameter.grad = (parameter.value - c) * w * 2
            optimizer.step()
            let difference = parameter.value.maxAbsDifference(Tensor(shape: [n], scalars: want))
            #expect(difference < 2e-6, "\(name) step \(step): max difference \(difference)")
            #expect(parameter.grad == nil)
        }
    }

    @Test func adamWWithDefaults() throws {
        try replay("adamw_defaults_constant", schedule: .constant, baseRate: 0.1) {
            AdamW(parameters: $0, learningRate: 0.1)
        }
    }

    @Test func adamWWithDecayAndWarmup() throws {
        try replay("adamw_decay_linear", schedule: .linear(warmupSteps: 3, totalSteps: 10), baseRate: 0.05) {
            AdamW(parameters: $0, learningRate: 0.05, beta1: 0.8, beta2: 0.99, epsilon: 1e-6, weightDecay: 0.1)
        }
    }

    @Test func sgdWithMomentumAndWarmup() throws {
        try replay("sgd_momentum_linear", schedule: .linear(warmupSteps: 2, totalSteps: 12), baseRate: 0.05) {
            SGD(parameters: $0, learningRate: 0.05, momentum: 0.9, weightDecay: 0.01)
        }
    }

    @Test func sgdNesterov() throws {
        try replay("sgd_nesterov_constant", schedule: .constant, baseRate: 0.02) {
            SGD(parameters: $0, learningRate: 0.02, momentum: 0.5, nesterov: true)
        }
    }

    @Test func parametersWithoutGradientAreLeftAlone() {
        let untouched = Parameter(Tensor(repeating: 3, shape: [2]))
        let optimizer = AdamW(parameters: [untouched])
        optimizer.step()
        #expect(untouched.value.scalars == [3, 3])
    }

    /// The update fused into backward equals backward then `step()`, bit for
    /// bit, also for a weight used twice and a trainable weight the optimizer
    /// does not own (which keeps its gradient).
    @Test func adamWFusedWithBackwardEqualsStepAfterBackward() {
        func train(fused: Bool) -> (values: [Tensor], other: Tensor?) {
            var generator = SeededGenerator(seed: 4)
            let first = Linear(inputSize: 5, outputSize: 5, generator: &generator)
            let second = Linear(inputSize: 5, outputSize: 5, generator: &generator)
            let other = Parameter(Tensor.normal(shape: [5], generator: &generator))
            let owned = first.trainableParameters().map(\.parameter) + second.trainableParameters().map(\.parameter)
            let optimizer = AdamW(parameters: owned, learningRate: 0.01, weightDecay: 0.1)
            for step in 0..<3 {
                let tape = Tape()
                let x = Variable(Tensor.normal(shape: [4, 5], generator: &generator))
                let y = first(second(first(x, tape: tape), tape: tape), tape: tape) * tape.variable(other)
                let loss = (y * y).mean()
                if fused { optimizer.step(backward: loss, on: tape) } else { tape.backward(loss); optimizer.step() }
                #expect(owned.allSatisfy { $0.grad == nil }, "step \(step)")
            }
            return (owned.map(\.value), other.grad)
        }
        let plain = train(fused: false), fused = train(fused: true)
        #expect(plain.values == fused.values)
        #expect(plain.other != nil && plain.other == fused.other)
    }

    @Test func linearScheduleShape() {
        let schedule = LearningRateSchedule.linear(warmupSteps: 4, totalSteps: 12)
        #expect(schedule.factor(at: 0) == 0)
        #expect(schedule.factor(at: 2) == 0.5)
        #expect(schedule.factor(at: 4) == 1)
        #expect(schedule.factor(at: 8) == 0.5)
        #expect(schedule.factor(at: 12) == 0 && schedule.factor(at: 20) == 0)
    }
}
