import ArgumentParser
import Foundation
import Graft

/// `adapt mlm`: trains a language adapter (or the masked-LM head alone) by masked language modelling.
struct MLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlm",
        abstract: "Train a language adapter by masked language modelling and report its pseudo-perplexity.",
        discussion: """
            The backbone stays frozen. The masked-LM head (dense + GELU + LayerNorm, decoder tied to \
            the word embeddings) is trained with the adapter: the backbone's pretrained head when it ships \
            one, else a new one (it says which); --head-only trains the head alone, the baseline a language \
            adapter is compared with. Texts are masked as in BERT (15%; 80/10/10), \
            one text per example; vocabulary logits are computed at the masked positions only, by default \
            over the tokens of the training texts alone (--output-vocabulary). At the end the held-out texts \
            are scored over the full vocabulary: masked-LM loss and pseudo-perplexity (each token masked in turn).
            """)

    @Option(help: "The backbone file (made by `adapt import`).") var backbone: String
    @Option(help: "The texts: a prepared corpus (chichewa-bible, english-bible) or a .txt / .jsonl file.") var data: String
    @OptionGroup var adapter: AdapterOptions
    @Flag(help: "Train the masked-LM head alone, without an adapter (the baseline).") var headOnly = false
    @Option(help: "Where to write the adapter checkpoint (.h5); required unless --head-only.") var output: String?
    @Option(help: "Use at most this many training texts (default: all).") var trainTexts: Int?
    @Option(help: "Held-out texts for the final pseudo-perplexity (default 64).") var evaluationTexts = 64
    @Option(help: """
        The vocabulary the training softmax runs over: corpus (the tokens of the training texts plus the \
        special tokens) or full. Evaluation is always over the full vocabulary.
        """)
    var outputVocabulary: OutputVocabularyChoice = .corpus
    @Option(help: """
        With --output-vocabulary corpus: tokens from outside the corpus scored in each batch's softmax, \
        drawn at random (sampled softmax), so that the model learns to rule them out (0: none).
        """)
    var negativeSamples = 2048
    @Option(help: """
        Weight of the feature anchor (0: none): a penalty on how far the adapter moves the backbone's \
        mean-pooled output (squared distance over squared norm), so that a sentence-embedding backbone \
        keeps its embeddings while the adapter learns the language. Costs one more frozen forward per step.
        """)
    var anchorWeight: Float = 0
    @Option(help: """
        With --anchor-weight: anchor each verse's pooled output to the backbone's embedding of its \
        translation in this prepared Bible (english-bible, chichewa-bible; joined by verse) instead of \
        its own, pulling the language's sentence embeddings onto the translation's. --data must be a Bible too.
        """)
    var anchorTranslations: String?
    @OptionGroup var training: TrainingFlags

    /// The defaults of a language-adapter run: 1000 steps at 1e-4 (as MAD-X), no warm-up.
    static let defaults = TrainingFlags.Defaults(length: .steps(1000), learningRate: 1e-4, warmupFraction: 0)

    func validate() throws {
        guard headOnly || output != nil else { throw ValidationError("--output is required unless --head-only") }
        try checkPositive(["--evaluation-texts": evaluationTexts, "--train-texts": trainTexts])
        guard negativeSamples >= 0 else { throw ValidationError("--negative-samples must not be negative") }
        guard anchorWeight >= 0, anchorWeight.isFinite else { throw ValidationError("--anchor-weight must be a finite number >= 0") }
        guard anchorWeight == 0 || !headOnly else { throw ValidationError("--anchor-weight needs an adapter: --head-only leaves the backbone's output as it is") }
        guard anchorTranslations == nil || anchorWeight > 0 else { throw ValidationError("--anchor-translations needs --anchor-weight above 0") }
        if let output { try checkWritable(output) }
        try checkNotOverwritten([backbone, data], by: training.files(writtenWith: output))
    }

    func run() throws {
        let (resolved, batchSize, maxLength) = try training.resolve(defaults: Self.defaults)
        let model = try Backbone.load(from: backbone)
        let (corpus, translations) = try anchorTranslations.map { try TextCorpus.loadParallel(data, translations: $0) }
            ?? (try TextCorpus.load(data), nil)
        let tokenizer = model.tokenizer
        // Indices, so that a text and its translation are sampled together.
        let (trainIndices, heldOutIndices) = (Array(corpus.train.indices).sample(trainTexts, seed: resolved.seed),
                                              Array(corpus.heldOut.indices).sample(evaluationTexts, seed: 1))
        func encoded(_ texts: [String], _ indices: [Int]) -> [[Int]] { indices.map { tokenizer.encode(texts[$0], maxLength: maxLength) } }
        let (train, heldOut) = (encoded(corpus.train, trainIndices), encoded(corpus.heldOut, heldOutIndices))
        let trainTargets = translations.map { encoded($0.train, trainIndices) }
        let heldOutTargets = translations.map { encoded($0.heldOut, heldOutIndices) }
        guard !heldOut.isEmpty else { throw CommandError("\(data) has no held-out texts to evaluate on") }

        let grafted = GraftedModel(encoder: model.encoder)
        grafted.recomputesLayers = training.recomputeLayers
        var adapterConfiguration: AdapterConfiguration?
        if !headOnly {
            let configuration = try adapter.configuration()
            try grafted.add("language", configuration.makeAdapter(model: model.configuration, seed: derivedSeed(resolved.seed, "language")))
            try grafted.activate(.single("language"))
            adapterConfiguration = configuration
        }
        var generator = SeededGenerator(seed: resolved.seed &+ 1)
        let head = model.maskedLMHead ?? MaskedLMHead(tiedTo: model.encoder, generator: &generator)
        head.setTrainable(true)
        print(model.maskedLMHead == nil ? "masked-LM head: new (the backbone ships none)" : "masked-LM head: the backbone's pretrained head")
        let task = MaskedLanguageModel(backbone: model, model: grafted, head: head)
        task.anchorWeight = anchorWeight
        let parameters = grafted.namedParameters() + head.namedParameters().map { ("head.\($0.name)", $0.parameter) }
        let trainable = parameters.reduce(0) { $0 + $1.parameter.value.count }
        print("\(headOnly ? "head only" : adapter.method): \(trainable) trainable parameters; \(train.count) training texts, \(heldOut.count) held-out; batch \(batchSize) x up to \(maxLength) tokens")
        reportCoverage(TokenizerCoverage(texts: train, tokenizer: tokenizer))
        if let anchorTranslations {
            print("feature anchor: weight \(anchorWeight) on the pooled output's squared relative distance from the backbone's embedding of the verse in \(anchorTranslations) (\(train.count) verse pairs)")
        } else if anchorWeight > 0 {
            print("feature anchor: weight \(anchorWeight) on the pooled output's squared relative distance from the backbone's")
        }
        if outputVocabulary == .corpus {
            let vocabulary = OutputVocabulary(covering: train, tokenizer: tokenizer, fullSize: head.decoderWeight.value.shape[0])
            task.trainingVocabulary = vocabulary
            task.negativeSamples = negativeSamples
            print("output vocabulary: \(grouped(vocabulary.count)) of \(grouped(vocabulary.fullSize)) tokens (the training corpus plus special tokens)")
        }

        let run = try TrainingRun(lengths: train.map(\.count), batchSize: batchSize, options: resolved)
        let evaluationSeed = run.options.seed &+ 7
        let trainer = try run.train(
            parameters, examples: Array(train.indices), flags: training, checkpoint: output.map { $0 + ".training.h5" },
            label: "mlm", backbone: model.checksum,
            loss: { batch, seed, tape in
                task.loss(batch.map { train[$0] }, anchorTargets: trainTargets.map { targets in batch.map { targets[$0] } }, seed: seed, tape: tape)
            },
            evaluate: { -Double(task.loss(heldOut, seed: evaluationSeed, tape: nil, training: false).loss.value.scalar) })

        let heldOutLoss = task.loss(heldOut, seed: evaluationSeed, tape: nil, training: false).loss.value.scalar
        let pppl = task.pseudoPerplexity(heldOut)
        print(String(format: "held-out masked-LM loss %.4f, pseudo-perplexity %.2f (%d texts)", heldOutLoss, pppl, heldOut.count))
        if !headOnly {
            print(String(format: "held-out sentence embeddings moved by the adapter: %.4f (squared distance over squared norm of the mean-pooled output)",
                         task.pooledDistance(heldOut)))
            if let heldOutTargets {
                print(String(format: "held-out sentence embeddings' distance from their translations': %.4f before the adapter, %.4f after",
                             task.pooledDistance(heldOut, to: heldOutTargets, adapted: false), task.pooledDistance(heldOut, to: heldOutTargets)))
            }
        }
        if run.writesFiles, let output, let adapterConfiguration, let adapter = grafted.adapters["language"] {
            try AdapterCheckpoint(name: "language", adapter: adapter, configuration: adapterConfiguration, head: head,
                                  headConfiguration: .maskedLM, backbone: model).save(to: output)
            print("wrote \(output)")
        }
        if run.writesFiles, let checkpoint = trainer.checkpointPath { try? FileManager.default.removeItem(atPath: checkpoint) }
    }
}

/// The vocabulary `adapt mlm` trains the softmax over.
enum OutputVocabularyChoice: String, ExpressibleByArgument, CaseIterable {
    case corpus, full
}

/// Prints the share of unknown tokens in the training texts, with a warning on
/// standard error when the tokenizer leaves more than 5% of them unknown.
func reportCoverage(_ coverage: TokenizerCoverage) {
    let percent = String(format: "%.2f%%", 100 * coverage.unknownFraction)
    print("tokenizer coverage: \(percent) of \(grouped(coverage.tokens)) training tokens are unknown")
    if coverage.unknownFraction > 0.05 {
        warn("\(percent) of the training tokens are the unknown token: the tokenizer does not cover this corpus well")
    }
}

/// Fails early, with the reason, if `path` cannot be written.
func checkWritable(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("cannot write \(path): it is a directory; give a file name")
    }
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard FileManager.default.isWritableFile(atPath: directory) else {
        throw ValidationError("cannot write \(path): the directory \(directory) does not exist or is not writable")
    }
}
