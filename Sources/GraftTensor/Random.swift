import CKernels
import Foundation

/// A small, fast, seedable random number generator (xoshiro256**), seeded by
/// SplitMix64. The same seed gives the same stream on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose state is the first four SplitMix64 outputs for `seed`.
    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        state = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
    }

    /// The next 64 random bits of the xoshiro256** stream.
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
}

/// An inverted-dropout mask stored compactly: one flag per element, and the
/// factor `1 / (1 - p)` that kept elements are scaled by.
public struct DropoutMask: Sendable {
    /// Whether each element is kept (the others are zeroed).
    public let kept: [Bool]
    /// The factor applied to kept elements.
    public let scale: Float

    /// Elements drawn from one sub-stream: the mask is drawn in blocks of this
    /// size, in parallel, and does not depend on the number of threads.
    static let block = 1 << 16

    /// Drops each of `count` elements with probability `p`. Takes one value from
    /// `generator`; block `i` of the mask is drawn from a generator seeded by
    /// that value and `i`, two 32-bit uniforms per 64-bit draw.
    public init(count: Int, probability p: Float, generator: inout SeededGenerator) {
        precondition(p >= 0 && p < 1, "dropout probability must be in [0, 1), got \(p)")
        let seed = generator.next()
        let threshold = UInt32(Double(p) * 4_294_967_296)
        var flags = [Bool](repeating: true, count: count)
        flags.withUnsafeMutableBufferPointer { f in
            Parallel.forRanges((count + Self.block - 1) / Self.block, grain: 1) { blocks in
                for block in blocks {
                    var stream = SeededGenerator(seed: seed &+ UInt64(block) &* 0x9E37_79B9_7F4A_7C15)
                    let end = Swift.min(count, (block + 1) * Self.block)
                    for i in stride(from: block * Self.block, to: end, by: 2) {
                        let bits = stream.next()
                        f[i] = UInt32(truncatingIfNeeded: bits) >= threshold
                        if i + 1 < end { f[i + 1] = UInt32(truncatingIfNeeded: bits >> 32) >= threshold }
                    }
                }
            }
        }
        kept = flags
        scale = 1 / (1 - p)
    }

    private init(kept: [Bool], scale: Float) { (self.kept, self.scale) = (kept, scale) }

    /// The flags of elements `range`, with the same scale.
    public func slice(_ range: Range<Int>) -> DropoutMask { DropoutMask(kept: Array(kept[range]), scale: scale) }

    /// `x` with the dropped elements zeroed and the kept ones scaled.
    public func apply(to x: Tensor) -> Tensor {
        precondition(x.count == kept.count, "DropoutMask: \(kept.count) flags for a tensor of \(x.count) elements")
        var out = Tensor(uninitialized: x.shape)
        let scale = scale
        kept.withUnsafeBufferPointer { flags in
            x.scalars.withUnsafeBufferPointer { p in
                out.scalars.withUnsafeMutableBufferPointer { o in
                    Parallel.forRanges(p.count) { range in
                        graft_dropout(p.baseAddress! + range.lowerBound, flags.baseAddress! + range.lowerBound, scale,
                                      o.baseAddress! + range.lowerBound, range.count)
                    }
                }
            }
        }
        return out
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seedable generator whose
/// stream is fixed by its seed on every machine, used to seed `SeededGenerator` and to make dataset
/// splits reproducible. Each call adds 0x9E3779B97F4A7C15 to the state and mixes it.
public struct SplitMix64: Sendable {
    private var state: UInt64

    /// A generator whose stream is determined by `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
