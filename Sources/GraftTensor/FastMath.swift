/// Vectorised single-precision `exp` and `erf` for the element-wise kernels
/// (libm's are one call per element). Relative error of `exp` below 3e-7;
/// absolute error of `erf` below 5e-7 (Abramowitz and Stegun 7.1.26).
public enum FastMath {
    /// The vector type the kernels work on.
    public typealias Vector = SIMD8<Float>

    /// `e^x` per lane, with `x` clamped to `[-87.3, 88.3]` (the results stay normal floats).
    @inlinable @inline(__always)
    public static func exp(_ x: Vector) -> Vector {
        var clamped = x.replacing(with: -87.3, where: x .< -87.3)
        clamped.replace(with: 88.3, where: clamped .> 88.3)
        // x = n ln2 + r with |r| <= ln2 / 2; n by the round-to-nearest magic constant.
        let shifted = clamped * 1.44269504 + 12582912
        let n = shifted - 12582912
        let r = (clamped - n * 0.693359375) + n * 2.12194440e-4
        // e^r by its degree-6 Taylor polynomial (Horner).
        var p = Vector(repeating: 1.0 / 720)
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1
        p = p * r + 1
        // 2^n from the exponent bits: the low bits of `shifted` hold n.
        let exponent = unsafeBitCast(shifted, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127
        return p * unsafeBitCast(exponent &<< 23, to: Vector.self)
    }

    /// The error function per lane.
    @inlinable @inline(__always)
    public static func erf(_ x: Vector) -> Vector {
        let negative = x .< 0
        let a = x.replacing(with: -x, where: negative)
        let t = 1 / (1 + 0.3275911 * a)
        var p = Vector(repeating: 1.061405429)
        p = p * t - 1.453152027
        p = p * t + 1.421413741
        p = p * t - 0.284496736
        p = p * t + 0.254829592
        let e = 1 - p * t * exp(-a * a)
        return e.replacing(with: Vector() - e, where: negative)
    }

    /// `e^x` for one value (the vector kernel on one lane).
    @inlinable
    public static func exp(_ x: Float) -> Float { exp(Vector(repeating: x))[0] }

    /// `Σ e^(x - shift)` over `values`.
    @inlinable
    public static func sumOfExp(_ values: UnsafeMutableBufferPointer<Float>, minus shift: Float) -> Float {
        guard let base = values.baseAddress else { return 0 }
        let raw = UnsafeRawPointer(base)
        let whole = values.count / 8 * 8
        var sums = Vector()
        for i in stride(from: 0, to: whole, by: 8) {
            sums += exp(raw.loadUnaligned(fromByteOffset: i * 4, as: Vector.self) - shift)
        }
        var total = sums.sum()
        for i in whole..<values.count { total += exp(values[i] - shift) }
        return total
    }

    /// Replaces every element of `buffer` by `body` of it, eight at a time
    /// (the last partial vector is padded with zeros and only its real lanes stored).
    @inlinable @inline(__always)
    public static func transform(_ buffer: UnsafeMutableBufferPointer<Float>, _ body: (Vector) -> Vector) {
        guard let base = buffer.baseAddress else { return }
        let raw = UnsafeMutableRawPointer(base)
        let whole = buffer.count / 8 * 8
        for i in stride(from: 0, to: whole, by: 8) {
            raw.storeBytes(of: body(raw.loadUnaligned(fromByteOffset: i * 4, as: Vector.self)), toByteOffset: i * 4, as: Vector.self)
        }
        guard whole < buffer.count else { return }
        var tail = Vector()
        for i in whole..<buffer.count { tail[i - whole] = buffer[i] }
        let result = body(tail)
        for i in whole..<buffer.count { buffer[i] = result[i - whole] }
    }
}
