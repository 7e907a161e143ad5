/// A dense, row-major array of `Float` with a shape.
///
/// `Tensor` is a value type: its storage is a Swift array, so copies are cheap
/// and copy-on-write. Element `[i0, i1, ..., in]` lives at the row-major offset
/// `((i0 * d1 + i1) * d2 + ...) + in`.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    /// The size of each dimension, outermost first. A scalar has shape `[]`.
    public private(set) var shape: [Int]
    /// The elements in row-major order.
    public var scalars: [Float]

    /// Creates a tensor from its shape and row-major elements.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(
            Tensor.count(of: shape) == scalars.count,
            "Tensor: shape \(shape) needs \(Tensor.count(of: shape)) elements, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of the given shape filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: Tensor.count(of: shape)))
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape) }

    /// A tensor whose elements are not initialised: only for outputs that are
    /// overwritten entirely (GEMM with `beta = 0`, element-wise kernels), to skip zero-filling.
    public init(uninitialized shape: [Int]) {
        let count = Tensor.count(of: shape)
        self.shape = shape
        scalars = [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// A rank-0 tensor holding one value.
    public init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// A tensor whose elements are produced by `body(flatIndex)`.
    public init(shape: [Int], generating body: (Int) -> Float) {
        self.init(shape: shape, scalars: (0..<Tensor.count(of: shape)).map(body))
    }

    /// Number of elements.
    public var count: Int { scalars.count }
    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "Tensor.scalar: tensor of shape \(shape) has \(count) elements")
        return scalars[0]
    }

    /// Number of elements of a shape.
    public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Resolves a possibly negative axis (`-1` is the last) against this rank.
    public func axis(_ axis: Int) -> Int {
        let resolved = axis < 0 ? axis + rank : axis
        precondition(resolved >= 0 && resolved < rank, "axis \(axis) out of range for shape \(shape)")
        return resolved
    }

    /// The same elements viewed with another shape; one dimension may be `-1`.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let unknown = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != unknown }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot reshape \(shape) to \(newShape)")
            resolved[unknown] = count / known
        }
        precondition(Tensor.count(of: resolved) == count, "reshape: cannot reshape \(shape) to \(newShape)")
        var copy = self
        copy.shape = resolved
        return copy
    }

    /// Element access by multi-index (for tests and small tensors, not hot paths).
    public subscript(_ index: Int...) -> Float {
        get { scalars[offset(index)] }
        set { scalars[offset(index)] = newValue }
    }

    private func offset(_ index: [Int]) -> Int {
        precondition(index.count == rank, "index \(index) does not match shape \(shape)")
        var flat = 0
        for (i, dim) in zip(index, shape) {
            precondition(i >= 0 && i < dim, "index \(index) out of range for shape \(shape)")
            flat = flat * dim + i
        }
        return flat
    }

    /// Largest absolute difference to another tensor of the same shape.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: shapes \(shape) and \(other.shape) differ")
        var worst: Float = 0
        for i in 0..<count { worst = Swift.max(worst, abs(scalars[i] - other.scalars[i])) }
        return worst
    }

    /// `Tensor(shape: [...], [first 8 scalars, ...])`, for logs and test failures.
    public var description: String {
        let preview = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", ..." : "")])"
    }
}

/// Splits a shape around `axis` into (product before, size of axis, product after).
public func splitAround(_ shape: [Int], axis: Int) -> (outer: Int, length: Int, inner: Int) {
    (Tensor.count(of: Array(shape[..<axis])), shape[axis], Tensor.count(of: Array(shape[(axis + 1)...])))
}

extension Optional where Wrapped == Tensor {
    /// Calls `body` with the tensor's mutable storage, or with nil when there is
    /// no tensor: for kernels with an optional output.
    mutating func withUnsafeMutableBaseAddress<Result>(_ body: (UnsafeMutablePointer<Float>?) -> Result) -> Result {
        guard self != nil else { return body(nil) }
        return self!.scalars.withUnsafeMutableBufferPointer { body($0.baseAddress) }
    }
}
