import Foundation

/// A small, fast, seedable random number generator (xoshiro256**), seeded by
/// SplitMix64. The same seed gives the same stream on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }

    /// A uniform `Float` in `[0, 1)` built from 24 random bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A standard normal sample (Box-Muller).
    public mutating func nextNormal() -> Float {
        let u1 = Double(next() >> 11) * 0x1p-53
        let u2 = Double(next() >> 11) * 0x1p-53
        return Float((-2 * Foundation.log(1 - u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Samples from `N(mean, std²)`.
    public static func normal(shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                              generator: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape) { _ in mean + standardDeviation * generator.nextNormal() }
    }

    /// Samples uniformly from `[low, high)`.
    public static func uniform(shape: [Int], low: Float, high: Float, generator: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape) { _ in low + (high - low) * generator.nextUnitFloat() }
    }

    /// An inverted-dropout mask: each element is `0` with probability `p`,
    /// otherwise `1 / (1 - p)`.
    public static func dropoutMask(shape: [Int], probability p: Float, generator: inout SeededGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let keep = 1 / (1 - p)
        return Tensor(shape: shape) { _ in generator.nextUnitFloat() < p ? 0 : keep }
    }
}
