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
            Adapters train at a default peak learning rate of 1e-3, LoRA at 3e-3. \
            The dev split is scored (macro-F1) before training and after every epoch; the run ends with the \
            parameters of the best of these evaluations (early stopping with --patience). By default the \
            head starts from a linear probe fitted on the frozen features (LP-FT) and the loss weighs the \
            classes of sequence sets equally (--class-weights balanced). --head-only fits that probe and \
            stops: the baseline every adapter is compared with. \
            --method unipt trains a UniPT side network (the backbone runs without a tape), saved and evaluated \
            as an adapter. --method \(FineTunedModel.method) \
            fine-tunes the whole backbone with the head, no adapter (the word-embedding table only with \
            --word-embeddings train), at a default learning rate of 3e-5, and writes the fine-tuned backbone \
            with its head to --output (`adapt eval --backbone OUTPUT` scores it).
            """)

    /// How the classification head starts.
    enum HeadStart: String, ExpressibleByArgument, CaseIterable {
        /// A linear probe on the features of the model as training begins (LP-FT).
        case probe
        /// Small random weights.
        case random
    }

    /// How the classes weigh in the training loss.
    enum ClassWeighting: String, ExpressibleByArgument, CaseIterable {
        /// Each class weighs the same in total (`n / (k n_c)` per example).
        case balanced
        /// Each example weighs the same.
        case none
    }

    /// What full fine-tuning does with the word-embedding table.
    enum WordEmbeddings: String, ExpressibleByArgument, CaseIterable {
        /// Kept as they are: most of a multilingual backbone's weights, few of whose rows a training set touches.
        case freeze
        /// Trained with the rest (dense AdamW over every row, as PyTorch's default).
        case train
    }

    @Option(help: "The backbone file (made by `adapt import`).") var backbone: String
    @Option(help: "The labelled data: a prepared set name or a file.") var data: String
    @OptionGroup var adapter: AdapterOptions
    @Option(help: "A language adapter checkpoint to stack the task adapter on (kept frozen).") var stackOn: String?
    @Option(help: "Where to write the task adapter checkpoint (.h5), with its head (--method full: the fine-tuned backbone with its head); required unless --head-only.")
    var output: String?
    @Flag(help: "Fit a linear probe on the frozen backbone's pooled features (logistic regression, penalty chosen on dev) and stop: the baseline.")
    var headOnly = false
    @Option(help: "How the head starts: probe (a linear probe on the starting features, then fine-tuning: LP-FT) or random (default: probe for sequence sets).")
    var headStart: HeadStart?
    @Option(help: "Class weights of the loss: balanced or none (default: balanced for sequence sets, none for tagging).")
    var classWeights: ClassWeighting?
    @Option(help: "--method \(FineTunedModel.method): freeze (default) or train the word-embedding table.")
    var wordEmbeddings: WordEmbeddings?
    @Option(help: "Use at most this many training examples (default: all).") var trainExamples: Int?
    @Option(help: "Dev examples scored at each evaluation (default 256).") var devExamples = 256
    @Option(help: "Test examples scored at the end (default: all).") var testExamples: Int?
    @OptionGroup var training: TrainingFlags

    /// The defaults of a task run: 5 epochs at the method's peak learning rate, a tenth of the run warming up.
    var methodDefaults: TrainingFlags.Defaults {
        TrainingFlags.Defaults(length: .epochs(5), learningRate: defaultLearningRate, warmupFraction: 0.1)
    }

    /// The default peak learning rate: 1e-3 for adapters. LoRA's is 3e-3: its update starts at zero and, on query
    /// and value alone, grows more slowly than a bottleneck's; at 1e-3 it stays near its linear-probe start for an
    /// epoch, in Graft and in AdapterHub alike (Docs/stacking.md, "LoRA in one epoch"). Full fine-tuning's is 3e-5,
    /// the middle of the range usual for BERT-family models with AdamW (2e-5 to 5e-5): every weight moves.
    var defaultLearningRate: Float {
        switch adapter.method {
        case FineTunedModel.method: 3e-5
        case LoRAConfiguration().method: 3e-3
        default: 1e-3
        }
    }

    var isFullFineTuning: Bool { adapter.method == FineTunedModel.method }

    func validate() throws {
        try checkPositive(["--train-examples": trainExamples, "--dev-examples": devExamples, "--test-examples": testExamples])
        if headOnly {
            guard output == nil, stackOn == nil else { throw ValidationError("--head-only fits a probe on the frozen backbone; it takes no --output or --stack-on") }
        } else {
            guard let output else { throw ValidationError("--output is required unless --head-only") }
            try checkWritable(output)
            try checkNotOverwritten([backbone, data] + (stackOn.map { [$0] } ?? []), by: training.files(writtenWith: output))
        }
        if isFullFineTuning {
            guard !headOnly, stackOn == nil else {
                throw ValidationError("--method \(FineTunedModel.method) trains the backbone itself; it takes no --head-only or --stack-on")
            }
            let adapterFlags = try adapter.givenFlags()
            guard adapterFlags.isEmpty else {
                throw ValidationError("\(adapterFlags.joined(separator: ", ")) do\(adapterFlags.count == 1 ? "es" : "") not apply to --method \(FineTunedModel.method)")
            }
        } else if wordEmbeddings != nil {
            throw ValidationError("--word-embeddings applies to --method \(FineTunedModel.method) only")
        }
    }

    func run() throws {
        let (options, batchSize, maxLength) = try training.resolve(defaults: methodDefaults)
        let model = try Backbone.load(from: backbone)
        let isTagging = data == DataRecipe.turkishPOS.rawValue || data.hasSuffix(".conllu")
        guard !(headOnly && isTagging) else { throw CommandError("--head-only fits sequence classifiers; \(data) is a tagging set") }
        let grafted = GraftedModel(encoder: model.encoder)
        grafted.recomputesLayers = training.recomputeLayers
        var setup: [AdapterSetup] = []
        if let stackOn {
            let language = try AdapterCheckpoint.load(from: stackOn, backbone: model)
            language.adapter.setTrainable(false)
            try grafted.add("language", language.adapter)
            setup.append(.single("language"))
        }
        let configuration = isFullFineTuning ? nil : try adapter.configuration()
        if isFullFineTuning {
            model.encoder.setTrainableForFineTuning(wordEmbeddings: wordEmbeddings == .train)
        } else if !headOnly, let configuration {
            // The task adapter's initialisation has a stream of its own, apart from a language adapter's of the same --seed.
            let task = try configuration.makeAdapter(model: model.configuration, seed: derivedSeed(options.seed, "task"))
            guard stackOn == nil || task.invertible == nil else {
                throw CommandError("""
                    --method \(adapter.method) with --stack-on: a Stack applies only its first adapter's invertible block \
                    (the language adapter's, as in MAD-X), so the task adapter's would never train; \
                    use the method without the block (seq_bn for seq_bn_inv)
                    """)
            }
            try grafted.add("task", task)
            setup.append(.single("task"))
        }
        try grafted.activate(setup.count > 1 ? .stack(setup) : setup.first)
        let limits = SplitLimits(train: trainExamples, dev: devExamples, test: testExamples, seed: options.seed)
        let report: ClassificationReport
        if isTagging {
            let sets = try LabelledData<TokenExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits)
            report = try fit(sets, kind: .token, model: model, grafted: grafted, configuration: configuration,
                             options: options, batchSize: batchSize, lengths: { $0.ids.count },
                             labels: { $0.labels.filter { $0 != Variable.ignoreIndex } }, probe: nil,
                             loss: { $0.loss($1, seed: $2, tape: $3) }, evaluate: { $0.evaluate($1) })
        } else {
            let sets = try LabelledData<SequenceExample>.load(data, tokenizer: model.tokenizer, maxLength: maxLength, limits: limits)
            report = try fit(sets, kind: .sequence, model: model, grafted: grafted, configuration: configuration,
                             options: options, batchSize: batchSize, lengths: { $0.ids.count }, labels: { [$0.label] },
                             probe: { $0.fitProbe(train: sets.train, dev: sets.dev) },
                             loss: { $0.loss($1, seed: $2, tape: $3) }, evaluate: { $0.evaluate($1) })
        }
        print(report)
    }

    /// Trains on `sets.train`, evaluates on dev, saves the adapter and head, and scores the test split.
    /// Without an adapter `configuration`, the backbone's trainable weights are trained instead
    /// (full fine-tuning), and the fine-tuned backbone is saved with the head.
    func fit<Example>(
        _ sets: LabelledData<Example>, kind: Classifier.Kind, model: Backbone, grafted: GraftedModel,
        configuration: AdapterConfiguration?, options: TrainingOptions, batchSize: Int, lengths: (Example) -> Int,
        labels: (Example) -> [Int], probe: ((Classifier) -> (dev: ClassificationReport, l2: Float))?,
        loss: (Classifier, [Example], UInt64, Tape) -> (loss: Variable, tokens: Int),
        evaluate: @escaping (Classifier, [Example]) -> ClassificationReport
    ) throws -> ClassificationReport {
        let classifier = Classifier(backbone: model, model: grafted, kind: kind, labels: sets.labels, seed: options.seed &+ 1)
        let (train, dev, test) = (sets.train, sets.dev, sets.test)
        guard !dev.isEmpty, !test.isEmpty else { throw CommandError("\(data) needs dev and test examples") }
        if (classWeights ?? (kind == .sequence ? .balanced : .none)) == .balanced {
            do {
                classifier.classWeights = try balancedClassWeights(labels: train.flatMap(labels), classCount: sets.labels.count,
                                                                   names: sets.labels)
            } catch { throw CommandError("\(error)") }
        }
        let startsFromProbe = headOnly || headStart ?? (probe == nil ? .random : .probe) == .probe
        guard !startsFromProbe || probe != nil else {
            throw CommandError("a probe head needs a sequence-classification set; \(data) is a tagging set")
        }
        // A resumed run takes its head from the checkpoint; fitting the probe again would be overwritten.
        if let probe, startsFromProbe, headOnly || !training.resume {
            let fitted = probe(classifier)
            print(String(format: "linear probe on the starting features: dev macro-F1 %.4f (l2 %g)", fitted.dev.macroF1, fitted.l2))
        }
        if headOnly {
            print("test split:")
            return evaluate(classifier, test)
        }
        let output = output!
        var run = try TrainingRun(lengths: train.map(lengths), batchSize: batchSize, options: options)
        run.options.evaluateEvery = run.options.evaluateEvery ?? max(1, run.batches.batchesPerEpoch / run.options.gradientAccumulation)
        run.options.restoresBest = true
        let trained = configuration == nil
            ? model.encoder.trainableParameters().map { ("backbone.\($0.name)", $0.parameter) } : grafted.namedParameters(of: ["task"])
        let parameters = trained + classifier.head.namedParameters().map { ("head.\($0.name)", $0.parameter) }
        let method = configuration == nil
            ? "full fine-tuning (word embeddings \(model.encoder.embeddings.word.weight.isTrainable ? "trained" : "frozen"))"
            : "\(grafted.active!)"
        let epochs = String(format: "%.3g", run.epochs)
        print("\(method): \(parameters.reduce(0) { $0 + $1.parameter.value.count }) trainable parameters; "
              + "\(train.count) training, \(dev.count) dev, \(test.count) test examples; \(sets.labels.count) labels; "
              + "\(run.options.steps) steps of \(batchSize * run.options.gradientAccumulation) (\(epochs) epoch\(epochs == "1" ? "" : "s"))")
        let trainer = try run.train(parameters, examples: train, flags: training, checkpoint: output + ".training.h5", label: "train",
                                    backbone: model.checksum, loss: { loss(classifier, $0, $1, $2) },
                                    evaluate: { evaluate(classifier, dev).macroF1 })
        print(trainer.summary)
        let headConfiguration: HeadConfiguration = kind == .sequence
            ? .sequenceClassification(labels: sets.labels, pooling: .mean) : .tokenClassification(labels: sets.labels)
        if run.writesFiles {
            if let configuration {
                try AdapterCheckpoint(name: "task", adapter: grafted.adapters["task"]!, configuration: configuration,
                                      head: classifier.head, headConfiguration: headConfiguration, backbone: model).save(to: output)
            } else {
                try FineTunedModel(trained: model, head: classifier.head, headConfiguration: headConfiguration).save(to: output)
            }
            if let checkpoint = trainer.checkpointPath { try? FileManager.default.removeItem(atPath: checkpoint) }
        }
        print("wrote \(output)\ntest split:")
        return evaluate(classifier, test)
    }
}
