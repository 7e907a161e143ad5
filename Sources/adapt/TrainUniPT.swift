import ArgumentParser
import Foundation
import Graft

extension Train {
    /// `adapt train --method unipt`: trains a UniPT side network and a sequence-classification head
    /// (the backbone runs without a tape), saves them as a UniPT checkpoint and scores the test split.
    func fitUniPT(model: Backbone, options: TrainingOptions, batchSize: Int, maxLength: Int, output: String) throws -> ClassificationReport {
        guard stackOn == nil else {
            throw ValidationError("--stack-on does not apply to --method \(UniPT.method): the side network reads the plain backbone")
        }
        guard adapter.rank == nil else { throw ValidationError("--rank does not apply to --method \(UniPT.method)") }
        guard !training.recomputeLayers else {
            throw ValidationError("--recompute-layers does not apply to --method \(UniPT.method): its backbone keeps no activations")
        }
        var configuration = UniPTConfiguration()
        if let reductionFactor = adapter.reductionFactor {
            guard reductionFactor >= 1, reductionFactor == reductionFactor.rounded() else {
                throw ValidationError("--reduction-factor of \(UniPT.method) must be a whole number >= 1, got \(reductionFactor)")
            }
            configuration.reductionFactor = Int(reductionFactor)
        }
        let limits = SplitLimits(train: trainExamples, dev: devExamples, test: testExamples, seed: options.seed)
        let sets = try LabelledData<SequenceExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits)
        let (train, dev, test) = (sets.train, sets.dev, sets.test)
        guard !dev.isEmpty, !test.isEmpty else { throw ValidationError("\(data) needs dev and test examples") }
        let classifier = try UniPTClassifier(backbone: model, configuration: configuration, labels: sets.labels, seed: options.seed)
        let parameters = classifier.trainableParameters
        print("\(UniPT.method) (reduction factor \(configuration.reductionFactor)): "
              + "\(parameters.reduce(0) { $0 + $1.parameter.value.count }) trainable parameters; "
              + "\(train.count) training, \(dev.count) dev, \(test.count) test examples; \(sets.labels.count) labels")
        let batches = EpochBatches(lengths: train.map(\.ids.count), batchSize: batchSize, seed: options.seed)
        let options = try options.sized(batchesPerEpoch: batches.batchesPerEpoch)
        let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: output + ".training.h5")
        if training.resume { try trainer.resume(from: trainer.checkpointPath!) }
        let progress = try ProgressReporter(total: options.steps, startStep: trainer.step, label: "train", logPath: training.log)
        try trainer.run(
            loss: { step, micro, tape in
                let batch = batches.batch(step * options.gradientAccumulation + micro).map { train[$0] }
                let (value, tokens) = classifier.loss(batch, seed: trainer.seed(step: step, micro: micro), tape: tape)
                return (value, tokens)
            },
            evaluate: { _ in classifier.evaluate(dev).macroF1 },
            onStep: progress.report)
        try UniPTCheckpoint(side: classifier.side, head: classifier.head,
                            headConfiguration: .sequenceClassification(labels: sets.labels, pooling: classifier.head.pooling),
                            backbone: model).save(to: output)
        try? FileManager.default.removeItem(atPath: trainer.checkpointPath!)
        print("wrote \(output)\ntest split:")
        return classifier.evaluate(test)
    }
}
