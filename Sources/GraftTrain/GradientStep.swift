import GraftAdapters

/// The optimizers serve the concept bottleneck models' training (`OptimizerFactory`).
extension AdamW: GradientStep {}
extension SGD: GradientStep {}
