import GraftAutodiff
import GraftNN
import GraftTensor

/// Replaces every parameter of `module` with `N(0, scale²)` samples, so that
/// zero-initialised weights (LoRA's B, MoS's pool B) matter too.
public func randomize(_ module: any Module, seed: UInt64, scale: Float = 0.3) {
    var generator = SeededGenerator(seed: seed)
    for (_, parameter) in module.namedParameters() {
        parameter.value = .normal(shape: parameter.value.shape, standardDeviation: scale, generator: &generator)
    }
}

/// The relative error of the tape gradient of `f` with respect to each of
/// `parameters`, against central differences computed by perturbing the
/// parameter's value (`GradientCheck.relativeErrors` does the same for watched
/// inputs). `f` builds its output on the given tape, or without one.
/// A non-scalar output is reduced with fixed random weights; sums run in `Double`.
public func parameterGradientErrors(_ parameters: [Parameter], epsilon: Float = 1e-2, seed: UInt64 = 7,
                                    _ f: (Tape?) -> Variable) -> [Double] {
    for parameter in parameters { parameter.zeroGradient() }
    let tape = Tape()
    let output = f(tape)
    var generator = SeededGenerator(seed: seed)
    let weights = Tensor.normal(shape: output.shape, generator: &generator)
    tape.backward(output, seed: weights)
    func objective() -> Double {
        zip(f(nil).value.scalars, weights.scalars).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }
    return parameters.map { parameter in
        let analytic = parameter.grad ?? Tensor(zeros: parameter.value.shape)
        var difference = 0.0, analyticNorm = 0.0, numericNorm = 0.0
        for i in 0..<parameter.value.count {
            let original = parameter.value.scalars[i]
            parameter.value.scalars[i] = original + epsilon
            let plus = objective()
            parameter.value.scalars[i] = original - epsilon
            let minus = objective()
            parameter.value.scalars[i] = original
            let numeric = (plus - minus) / (2 * Double(epsilon))
            let a = Double(analytic.scalars[i])
            difference += (a - numeric) * (a - numeric)
            analyticNorm += a * a
            numericNorm += numeric * numeric
        }
        return difference.squareRoot() / max(analyticNorm.squareRoot(), numericNorm.squareRoot(), 1e-12)
    }
}
