/// Non-differentiable selection: argmax, top-k and nearest neighbours.
extension Tensor {
    /// Index of the largest element of each row (last axis); ties go to the first.
    public func argmax() -> [Int] { topK(1).indices }

    /// The `k` largest elements of each row (last axis), in descending order,
    /// and their indices. Returns tensors of shape `[..., k]` and flat index
    /// lists in the same order.
    public func topK(_ k: Int) -> (values: Tensor, indices: [Int]) {
        let width = shape.last ?? 1
        precondition(k >= 0 && k <= width, "topK: k = \(k) exceeds the last dimension \(width) of \(shape)")
        let rows = width == 0 ? 0 : count / width
        var values = [Float](), indices = [Int]()
        values.reserveCapacity(rows * k)
        indices.reserveCapacity(rows * k)
        for r in 0..<rows {
            let row = scalars[(r * width)..<((r + 1) * width)]
            let order = (0..<width).sorted { a, b in
                let (x, y) = (row[row.startIndex + a], row[row.startIndex + b])
                return x > y || (x == y && a < b)
            }
            for j in order.prefix(k) {
                indices.append(j)
                values.append(row[row.startIndex + j])
            }
        }
        return (Tensor(shape: Array(shape.dropLast()) + [k], scalars: values), indices)
    }

    /// For each row of `queries` (`[n, d]`), the index of the nearest row of
    /// `keys` (`[m, d]`) by Euclidean distance, and that squared distance.
    /// Uses `|q|² - 2 q·k + |k|²` with one GEMM.
    public static func nearestNeighbors(of queries: Tensor, in keys: Tensor) -> (indices: [Int], squaredDistances: [Float]) {
        precondition(queries.rank == 2 && keys.rank == 2 && queries.shape[1] == keys.shape[1],
                     "nearestNeighbors: queries \(queries.shape) and keys \(keys.shape) must be [n, d] and [m, d]")
        let (n, m) = (queries.shape[0], keys.shape[0])
        precondition(m > 0, "nearestNeighbors: no keys")
        let dots = matmul(queries, keys, transposeB: true)
        let keyNorms = (keys * keys).sum(alongAxis: 1).scalars
        let queryNorms = (queries * queries).sum(alongAxis: 1).scalars
        var indices = [Int](repeating: 0, count: n)
        var distances = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var best = Float.infinity, bestIndex = 0
            for j in 0..<m {
                let d = keyNorms[j] - 2 * dots.scalars[i * m + j]
                if d < best { best = d; bestIndex = j }
            }
            indices[i] = bestIndex
            distances[i] = Swift.max(0, best + queryNorms[i])
        }
        return (indices, distances)
    }
}
