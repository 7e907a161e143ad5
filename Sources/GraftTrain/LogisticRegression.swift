import Foundation
import GraftAutodiff
import GraftTensor

/// Multinomial logistic regression on fixed features: the linear probe of a
/// frozen backbone, and the starting head of LP-FT (Kumar et al. 2022, a probe
/// first, then fine-tuning).
///
/// It minimises `CE_w(X Wᵀ + b) + (l2 / 2) ‖W‖²`, where `CE_w` is the
/// (optionally class-weighted) mean cross-entropy of
/// ``GraftAutodiff/Variable/crossEntropy(logits:targets:classWeights:ignoreIndex:)``
/// and the bias is not penalised, full-batch with L-BFGS. The problem is convex,
/// so the solution does not depend on the solver: scikit-learn's
/// `LogisticRegression(C:)` with unit weights solves the same problem with
/// `l2 = 1 / (C n)`.
public struct LogisticRegression: Sendable {
    /// `[classes, features]`, the layout of a ``GraftNN/Linear`` weight.
    public var weight: Tensor
    /// `[classes]`.
    public var bias: Tensor
    /// L-BFGS iterations run.
    public var iterations: Int
    /// Whether the gradient norm fell below the tolerance.
    public var converged: Bool

    /// Fits the model to `features` (`[n, d]`) and class `labels`; the objective is
    /// evaluated in double precision.
    /// - Parameters:
    ///   - classWeights: one weight per class (e.g. ``balancedClassWeights(labels:classCount:)``), or nil for equal weights.
    ///   - l2: the penalty on the weight matrix (> 0 makes the optimum unique).
    ///   - tolerance: stop when the gradient's largest absolute entry is below this.
    public static func fit(features: Tensor, labels: [Int], classCount: Int, classWeights: [Float]? = nil,
                           l2: Float, maxIterations: Int = 1000, tolerance: Double = 1e-5) -> LogisticRegression {
        precondition(features.rank == 2 && features.shape[0] == labels.count && !labels.isEmpty,
                     "LogisticRegression: features \(features.shape) for \(labels.count) labels")
        precondition(l2 >= 0 && classCount > 1, "LogisticRegression: l2 must be >= 0 and there must be 2 or more classes")
        let (n, d) = (labels.count, features.shape[1])
        let weightCount = classCount * d
        let x = features.scalars.map(Double.init)
        // Each example's share of the loss: its class weight over the sum of them (1 / n unweighted).
        let weights = classWeights.map { w in labels.map { Double(w[$0]) } } ?? [Double](repeating: 1, count: n)
        let totalWeight = weights.reduce(0, +)
        precondition(totalWeight > 0, "LogisticRegression: the examples' class weights sum to 0")

        // The objective and its gradient at the flattened parameters [W, b], in double precision
        // (a float objective is too coarse for the line search near the optimum): logits X Wᵀ + b and
        // the weight gradient Gᵀ X as two GEMMs, where G holds each example's share of dLoss/dlogits.
        var logits = [Double](repeating: 0, count: n * classCount)
        func evaluate(_ point: [Double]) -> (value: Double, gradient: [Double]) {
            var value = 0.0
            var gradient = [Double](repeating: 0, count: point.count)
            point.withUnsafeBufferPointer { w in
                BLAS.gemm(transposeA: false, transposeB: true, m: n, n: classCount, k: d, a: x, lda: d,
                          b: w.baseAddress!, ldb: d, c: &logits, ldc: classCount)
            }
            for i in 0..<n {
                let row = (i * classCount)..<((i + 1) * classCount)
                for c in 0..<classCount { logits[row.lowerBound + c] += point[weightCount + c] }
                let top = logits[row].max()!
                let sum = logits[row].reduce(0) { $0 + Foundation.exp($1 - top) }
                let share = weights[i] / totalWeight
                value += share * (top + Foundation.log(sum) - logits[row.lowerBound + labels[i]])
                for c in 0..<classCount {  // logits become G
                    let g = share * (Foundation.exp(logits[row.lowerBound + c] - top) / sum - (c == labels[i] ? 1 : 0))
                    logits[row.lowerBound + c] = g
                    gradient[weightCount + c] += g
                }
            }
            gradient.withUnsafeMutableBufferPointer { g in
                BLAS.gemm(transposeA: true, transposeB: false, m: classCount, n: d, k: n, a: logits, lda: classCount,
                          b: x, ldb: d, c: g.baseAddress!, ldc: d)
            }
            for i in 0..<weightCount {
                value += Double(l2) / 2 * point[i] * point[i]
                gradient[i] += Double(l2) * point[i]
            }
            return (value, gradient)
        }

        let (solution, iterations, converged) = minimiseLBFGS(start: [Double](repeating: 0, count: weightCount + classCount),
                                                              maxIterations: maxIterations, tolerance: tolerance, evaluate)
        return LogisticRegression(weight: Tensor(shape: [classCount, d], scalars: solution[..<weightCount].map(Float.init)),
                                  bias: Tensor(shape: [classCount], scalars: solution[weightCount...].map(Float.init)),
                                  iterations: iterations, converged: converged)
    }

    /// The predicted class of each row of `features`.
    public func predict(_ features: Tensor) -> [Int] {
        Variable.linear(Variable(features), weight: Variable(weight), bias: Variable(bias)).value.argmax()
    }
}

/// Class weights `n / (k n_c)` ("balanced", as scikit-learn computes them), so that
/// every class weighs the same in the loss however many examples it has.
/// - Throws: ``TrainingError/emptyData(_:)`` naming a class without examples.
public func balancedClassWeights(labels: [Int], classCount: Int, names: [String]? = nil) throws -> [Float] {
    var counts = [Int](repeating: 0, count: classCount)
    for label in labels { counts[label] += 1 }
    if let empty = counts.firstIndex(of: 0) {
        throw TrainingError.emptyData("class \(names?[empty] ?? String(empty)) has no training examples; "
                                      + "use more training examples or drop the class")
    }
    return counts.map { Float(labels.count) / Float(classCount * $0) }
}

/// Limited-memory BFGS (Nocedal and Wright 2006, algorithm 7.4, memory 10) with
/// a backtracking Armijo line search, from `start`; stops when the gradient's
/// largest absolute entry is below `tolerance`.
func minimiseLBFGS(start: [Double], maxIterations: Int, tolerance: Double, memory: Int = 10,
                   _ evaluate: ([Double]) -> (value: Double, gradient: [Double])) -> (point: [Double], iterations: Int, converged: Bool) {
    func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
    var point = start
    var (value, gradient) = evaluate(point)
    var history: [(s: [Double], y: [Double], rho: Double)] = []
    for iteration in 0..<maxIterations {
        if gradient.map(abs).max()! < tolerance { return (point, iteration, true) }
        // Two-loop recursion: direction = -H gradient.
        var q = gradient
        var alphas: [Double] = []
        for (s, y, rho) in history.reversed() {
            let alpha = rho * dot(s, q)
            alphas.append(alpha)
            for i in q.indices { q[i] -= alpha * y[i] }
        }
        if let last = history.last {
            let gamma = dot(last.s, last.y) / dot(last.y, last.y)
            for i in q.indices { q[i] *= gamma }
        }
        for ((s, y, rho), alpha) in zip(history, alphas.reversed()) {
            let beta = rho * dot(y, q)
            for i in q.indices { q[i] += (alpha - beta) * s[i] }
        }
        var direction = q.map { -$0 }
        var slope = dot(direction, gradient)
        if slope >= 0 {  // not a descent direction: restart from steepest descent
            history.removeAll()
            direction = gradient.map { -$0 }
            slope = -dot(gradient, gradient)
        }
        var step = history.isEmpty ? min(1, 1 / max(direction.map(abs).max()!, 1e-12)) : 1
        var next: (value: Double, gradient: [Double]) = (value, gradient)
        var candidate = point
        var accepted = false
        for _ in 0..<40 {
            candidate = zip(point, direction).map { $0 + step * $1 }
            next = evaluate(candidate)
            if next.value <= value + 1e-4 * step * slope { accepted = true; break }
            step /= 2
        }
        guard accepted else { return (point, iteration, false) }
        let s = zip(candidate, point).map { $0 - $1 }, y = zip(next.gradient, gradient).map { $0 - $1 }
        let sy = dot(s, y)
        if sy > 1e-12 {
            history.append((s, y, 1 / sy))
            if history.count > memory { history.removeFirst() }
        }
        (point, value, gradient) = (candidate, next.value, next.gradient)
    }
    return (point, maxIterations, gradient.map(abs).max()! < tolerance)
}
