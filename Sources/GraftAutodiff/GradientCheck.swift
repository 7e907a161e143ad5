import GraftTensor

/// Compares a function's tape gradients with central finite differences.
public enum GradientCheck {
    /// The relative error `|analytic - numeric| / max(|analytic|, |numeric|)`
    /// (Euclidean norms) of the gradient of `f` with respect to each input.
    ///
    /// A non-scalar output is reduced to a scalar with fixed random weights, so
    /// every output element is checked. The numeric derivative accumulates the
    /// weighted output in `Double` to keep Float32 rounding out of the difference.
    public static func relativeErrors(
        inputs: [Tensor], epsilon: Float = 1e-2, seed: UInt64 = 7,
        _ f: ([Variable]) -> Variable
    ) -> [Double] {
        let tape = Tape()
        let watched = inputs.map { tape.watch($0) }
        let output = f(watched)
        var generator = SeededGenerator(seed: seed)
        let weights = Tensor.normal(shape: output.shape, generator: &generator)
        let gradients = tape.backward(output, seed: weights)

        func objective(_ values: [Tensor]) -> Double {
            let y = f(values.map { Variable($0) }).value
            var total = 0.0
            for (a, w) in zip(y.scalars, weights.scalars) { total += Double(a) * Double(w) }
            return total
        }

        return inputs.indices.map { which in
            let analytic = gradients[watched[which]] ?? Tensor(zeros: inputs[which].shape)
            var numeric = [Double](repeating: 0, count: inputs[which].count)
            var probe = inputs
            for i in 0..<numeric.count {
                let original = probe[which].scalars[i]
                probe[which].scalars[i] = original + epsilon
                let plus = objective(probe)
                probe[which].scalars[i] = original - epsilon
                let minus = objective(probe)
                probe[which].scalars[i] = original
                numeric[i] = (plus - minus) / (2 * Double(epsilon))
            }
            var difference = 0.0, analyticNorm = 0.0, numericNorm = 0.0
            for (a, n) in zip(analytic.scalars, numeric) {
                difference += (Double(a) - n) * (Double(a) - n)
                analyticNorm += Double(a) * Double(a)
                numericNorm += n * n
            }
            let scale = Swift.max(analyticNorm.squareRoot(), numericNorm.squareRoot(), 1e-12)
            return difference.squareRoot() / scale
        }
    }
}
