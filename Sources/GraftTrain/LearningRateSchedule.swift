/// A learning rate as a function of the optimizer step.
public enum LearningRateSchedule: Sendable, Equatable, Codable {
    /// The base rate throughout.
    case constant
    /// Linear warm-up from 0 over `warmupSteps`, then linear decay to 0 at
    /// `totalSteps` (as `transformers.get_linear_schedule_with_warmup`).
    case linear(warmupSteps: Int, totalSteps: Int)

    /// The factor applied to the base learning rate at `step` (0-based: the
    /// factor used for the update that follows `step` earlier updates).
    public func factor(at step: Int) -> Float {
        switch self {
        case .constant:
            return 1
        case let .linear(warmup, total):
            if step < warmup { return Float(step) / Float(Swift.max(1, warmup)) }
            return Swift.max(0, Float(total - step) / Float(Swift.max(1, total - warmup)))
        }
    }

    /// The learning rate at `step` for base rate `base`.
    public func learningRate(base: Float, at step: Int) -> Float { base * factor(at: step) }
}
