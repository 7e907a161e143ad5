import ArgumentParser
import Foundation
import Graft

/// `adapt train`: trains a task adapter with a classification head, optionally stacked on a language adapter.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a task adapter and its classification head; report macro-F1 on the test split.",
        discussion: """
            Sequence classification for text sets (chichewa-genres, english-genres, or a JSONL file of \
            {"text", "label", "split"}), token classification for tagging sets (turkish-pos, or CoNLL-U \
            with "# split = ..." comments; the first sub-word piece of each word carries its tag). With \
            --stack-on, a trained language adapter is frozen under the new task adapter: Stack(language, task). \
            Evaluation during training uses the dev split (macro-F1, which also drives early stopping). \
            --method \(UniPT.method) trains a UniPT side network instead of an adapter.
            """)

    @Option(help: "The backbone file (made by `adapt import`).") var backbone: String
    @Option(help: "The labelled data: a prepared set name or a file.") var data: String
    @OptionGroup var adapter: AdapterOptions
    @Option(help: "A language adapter checkpoint to stack the task adapter on (kept frozen).") var stackOn: String?
    @Option(help: "Where to write the task adapter checkpoint (.h5), with its head.") var output: String
    @Option(help: "Use at most this many training examples (default: all).") var trainExamples: Int?
    @Option(help: "Dev examples scored at each evaluation (default 256).") var devExamples = 256
    @Option(help: "Test examples scored at the end (default: all).") var testExamples: Int?
    @OptionGroup var training: TrainingFlags

    func validate() throws { try checkWritable(output) }

    func run() throws {
        let (options, batchSize, maxLength) = try training.resolve()
        let model = try Backbone.load(from: backbone)
        let isTagging = data == DataRecipe.turkishPOS.rawValue || data.hasSuffix(".conllu")
        if adapter.method == UniPT.method {
            guard !isTagging else { throw ValidationError("--method \(UniPT.method) trains sequence classification only; \(data) is a tagging set") }
            print(try fitUniPT(model: model, options: options, batchSize: batchSize, maxLength: maxLength))
            return
        }
        let grafted = GraftedModel(encoder: model.encoder)
        grafted.recomputesLayers = training.recomputeLayers
        var setup: AdapterSetup = .single("task")
        if let stackOn {
            let language = try AdapterCheckpoint.load(from: stackOn, backbone: model)
            language.adapter.setTrainable(false)
            try grafted.add("language", language.adapter)
            setup = .stack([.single("language"), .single("task")])
        }
        let configuration = try adapter.configuration()
        try grafted.add("task", configuration.makeAdapter(model: model.configuration, seed: options.seed))
        try grafted.activate(setup)
        let limits = SplitLimits(train: trainExamples, dev: devExamples, test: testExamples, seed: options.seed)
        let report: ClassificationReport
        if isTagging {
            let sets = try LabelledData<TokenExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits)
            report = try fit(sets, kind: .token, model: model, grafted: grafted, configuration: configuration,
                             options: options, batchSize: batchSize, lengths: { $0.ids.count },
                             loss: { $0.loss($1, seed: $2, tape: $3) }, evaluate: { $0.evaluate($1) })
        } else {
            let sets = try LabelledData<SequenceExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits)
            report = try fit(sets, kind: .sequence, model: model, grafted: grafted, configuration: configuration,
                             options: options, batchSize: batchSize, lengths: { $0.ids.count },
                             loss: { $0.loss($1, seed: $2, tape: $3) }, evaluate: { $0.evaluate($1) })
        }
        print(report)
    }

    /// Trains on `sets.train`, evaluates on dev, saves the adapter and head, and scores the test split.
    func fit<Example>(
        _ sets: LabelledData<Example>, kind: Classifier.Kind, model: Backbone, grafted: GraftedModel,
        configuration: AdapterConfiguration, options: TrainingOptions, batchSize: Int, lengths: (Example) -> Int,
        loss: (Classifier, [Example], UInt64, Tape) -> (loss: Variable, tokens: Int),
        evaluate: @escaping (Classifier, [Example]) -> ClassificationReport
    ) throws -> ClassificationReport {
        let classifier = Classifier(backbone: model, model: grafted, kind: kind, labels: sets.labels, seed: options.seed &+ 1)
        let (train, dev, test) = (sets.train, sets.dev, sets.test)
        guard !dev.isEmpty, !test.isEmpty else { throw ValidationError("\(data) needs dev and test examples") }
        let parameters = grafted.namedParameters(of: ["task"]) + classifier.head.namedParameters().map { ("head.\($0.name)", $0.parameter) }
        print("\(grafted.active!): \(parameters.reduce(0) { $0 + $1.parameter.value.count }) trainable parameters; "
              + "\(train.count) training, \(dev.count) dev, \(test.count) test examples; \(sets.labels.count) labels")
        let trainer = try Trainer(parameters: parameters, options: options, checkpointPath: output + ".training.h5")
        if training.resume { try trainer.resume(from: trainer.checkpointPath!) }
        let batches = EpochBatches(lengths: train.map(lengths), batchSize: batchSize, seed: options.seed)
        let progress = try ProgressReporter(total: options.steps, startStep: trainer.step, label: "train", logPath: training.log)
        try trainer.run(
            loss: { step, micro, tape in
                let batch = batches.batch(step * options.gradientAccumulation + micro).map { train[$0] }
                let (value, tokens) = loss(classifier, batch, trainer.seed(step: step, micro: micro), tape)
                return (value, tokens)
            },
            evaluate: { _ in evaluate(classifier, dev).macroF1 },
            onStep: progress.report)
        let headConfiguration: HeadConfiguration = kind == .sequence
            ? .sequenceClassification(labels: sets.labels, pooling: .mean) : .tokenClassification(labels: sets.labels)
        try AdapterCheckpoint(name: "task", adapter: grafted.adapters["task"]!, configuration: configuration,
                              head: classifier.head, headConfiguration: headConfiguration, backbone: model).save(to: output)
        try? FileManager.default.removeItem(atPath: trainer.checkpointPath!)
        print("wrote \(output)\ntest split:")
        return evaluate(classifier, test)
    }
}
