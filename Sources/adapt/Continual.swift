import ArgumentParser
import Foundation
import Graft

/// `adapt continual`: class-incremental learning on frozen features, the
/// discrete key-value bottleneck against a linear probe, an MLP and joint training.
struct ContinualCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "continual",
        abstract: "Class- and domain-incremental learning on frozen features: the key-value bottleneck, a linear probe and an MLP under continual-learning strategies, and joint training.",
        discussion: """
            Streams: bible-genres, the 8 genres of chichewa-genres (english-bible-genres: of english-genres) as 4 tasks of 2 (law, history | wisdom, \
            prophets | gospels, acts | epistles, revelation), features = the backbone's mean-pooled, normalised \
            embeddings of "query: VERSE" (first 128 tokens), a seeded sample of the train and test splits, \
            embedded once and cached in CACHE/features; the keys are initialised on unlabelled dev verses. \
            language-genres: domain-incremental, the same 8 genres learned language after language (English, \
            then Chichewa: the two streams' features), each task scored among all 8 genres. \
            fashion-mnist, 10 classes as 5 tasks of 2 (0-1, 2-3, ...), from the prepared fashion-mnist set \
            (prepared into the cache on first use, as by `adapt data prepare fashion-mnist`), features = the pixels in [0, 1] through a \
            fixed random Gaussian projection (seed 0); the keys are initialised on unlabelled training images \
            outside the sample. Each task is trained for --epochs epochs on its own examples (replay adds its memory of earlier ones; gdumb restarts and trains on its memory alone); \
            after each task every task seen so far is scored among all classes seen so far (no task identity). \
            Methods: kv (the bottleneck: values trained by plain SGD on each task's own classes, keys k-means- or \
            randomly initialised, EMA-refined, frozen), linear (linear probe), mlp (one ReLU hidden layer), \
            joint (the MLP retrained from scratch on all tasks so far, shuffled together: the upper bound), all (these four); \
            linear-per-task (a linear probe per task and a router that picks an example's task by the nearest \
            task prototype, the mean of the task's training features: no task identity at test time); over the backbone \
            itself, on the same texts (not on fashion-mnist): adapter (an --adapter-method adapter and a head, the \
            backbone frozen), adapter-per-task (an adapter and head per task, routed by the frozen backbone's \
            embeddings). Methods may be comma-separated. \
            The linear probe, the MLP and the adapter run under each --strategy: naive, replay (a memory joined to every \
            batch), ewc, lwf, gdumb (Avalanche's strategies of those names). Prints each accuracy matrix, the \
            average accuracy after the last task, forgetting (mean drop from a task's best earlier accuracy to \
            its final one), backward transfer and forward transfer (a task's accuracy just before it is learned \
            minus the untrained learner's; in a domain-incremental stream, what one language's training gives the next) as Markdown.
            """)

    /// The streams `--stream` names.
    enum Stream: String, ExpressibleByArgument, CaseIterable {
        case bibleGenres = "bible-genres", englishBibleGenres = "english-bible-genres", languageGenres = "language-genres"
        case fashionMNIST = "fashion-mnist"
    }
    /// How the bottleneck's keys start.
    enum KeyStart: String, ExpressibleByArgument, CaseIterable { case kmeans, random }

    @Option(help: "The stream: bible-genres, english-bible-genres, language-genres or fashion-mnist (or give --tasks).") var stream: Stream?
    @Option(help: """
        A stream of your own: one labelled JSONL file per task ({"text", "label", "split"}: train and test rows; \
        dev rows, if any, are the unlabelled texts of the keys), comma-separated, in order; each class belongs to one task, \
        or every file has the same classes (a domain-incremental stream: the task is learned again in each file's domain). Needs --backbone.
        """)
    var tasks: String?
    @Option(help: "With --tasks: what is put before each text when it is embedded (multilingual-e5's query prefix by default).")
    var textPrefix = "query: "
    @Option(help: "Also write every run's results as JSON to this file.") var json: String?
    @Option(help: "Also plot every run's average accuracy over the tasks seen so far, after each task, as SVG to this file.")
    var plot: String?
    @Option(help: "The backbone file (bible-genres).") var backbone: String?
    @Option(help: "kv, linear, mlp, joint, linear-per-task, adapter, adapter-per-task (comma-separated), or all (kv, linear, mlp, joint).")
    var method = "all"
    @Option(help: "adapter and adapter-per-task: the adapter method, with its defaults (\(AdapterMethods.names.joined(separator: ", "))).")
    var adapterMethod = "seq_bn"

    @Option(help: "Training examples per class (default: bible-genres 300, fashion-mnist 1000).") var trainPerClass: Int?
    @Option(help: "Test examples per class, at most (default: bible-genres 100, fashion-mnist 500).") var testPerClass: Int?
    @Option(help: "Unlabelled examples the keys are fitted on (default: bible-genres 1000 dev verses, fashion-mnist 5000 images).")
    var unlabelled: Int?
    @Option(help: "fashion-mnist: dimension of the random projection of the 784 pixels.") var featureSize = 256

    @Option(help: "Key-value bottleneck: heads C (as the reference).") var heads = 256
    @Option(help: "Keys per head K (reference 4096).") var keys = 512
    @Option(help: "Key dimension k (reference 14).") var keySize = 14
    @Option(help: "Splitter: projection (random, column-normalised) or chunks (needs d = C k).") var splitter = KeyValueSplitter.projection
    @Option(help: "Key initialisation: kmeans or random.") var keyInit = KeyStart.kmeans
    @Option(help: "k-means iterations.") var kmeansIterations = 10
    @Option(help: "Passes of EMA key refinement (decay 0.95, batches of 256) over the unlabelled data.") var refineEpochs = 2
    @Option(help: "Dead-key threshold, a fraction of uniform key usage (0 disables replacement).") var deadCodeThreshold: Float = 0.1
    @Option(help: "Value dimension with a trainable linear decoder to the classes (default: no decoder, values are logits).")
    var decoderSize: Int?

    @Option(help: "Epochs per task.") var epochs = 5
    @Option(help: "Examples per mini-batch.") var batchSize = 32
    @Option(help: "AdamW learning rate of the linear probes, the MLPs and the adapters with their heads.") var learningRate: Float = 1e-3
    @Option(help: "Learning rate of the bottleneck's values (the reference's SGD rate).") var kvLearningRate: Float = 0.3
    @Flag(help: "Bottleneck inference averages over every head, also those whose selected value was never trained (an ablation).")
    var kvAverageAllHeads = false
    @Option(help: "Optimizer of the bottleneck's values: adamw or sgd (plain, no momentum).") var kvOptimizer = ContinualSchedule.OptimizerKind.sgd
    @Option(help: """
        The classes each task's loss runs over, for every method but joint: seen (all classes so far), all (every output, \
        as Avalanche) or task \
        (its own; the default of kv, whose shared values would otherwise unlearn earlier classes, and of the per-task methods; \
        linear, mlp and adapter default to seen).
        """)
    var lossClasses: ContinualSchedule.LossClasses?
    @Option(help: "Hidden units of the MLP.") var hiddenSize = 256
    @Option(help: "Strategies of the linear probe, the MLP and the adapter: naive, replay, ewc, lwf, gdumb (comma-separated) or all.")
    var strategy = "naive"
    @Option(help: "Examples the replay and GDumb memories hold.") var memory = 200
    @Option(help: "EWC's penalty weight lambda.") var ewcLambda: Float = 100
    @Option(help: "LwF's distillation weight alpha.") var lwfAlpha: Float = 1
    @Option(help: "LwF's distillation temperature.") var lwfTemperature: Float = 2
    @Option(help: "Seed of initialisation and example order (the data sample is fixed).") var seed: UInt64 = 0
    @OptionGroup var threads: ThreadsOption
    @OptionGroup var cache: CacheOption

    enum Method: String, CaseIterable {
        case kv, linear, mlp, joint
        case linearPerTask = "linear-per-task", adapter, adapterPerTask = "adapter-per-task"

        /// What `--method all` runs: the methods on features.
        static let onFeatures: [Method] = [.kv, .linear, .mlp, .joint]
        /// Whether it runs under each `--strategy` (the others run naive only).
        var takesStrategies: Bool { [.linear, .mlp, .adapter].contains(self) }
        /// Whether it trains over the backbone, on the texts.
        var readsTexts: Bool { self == .adapter || self == .adapterPerTask }
    }

    func validate() throws {
        guard (stream == nil) != (tasks == nil) else { throw ValidationError("give either --stream or --tasks") }
        if stream != .fashionMNIST && backbone == nil {
            throw ValidationError("\(stream.map { "--stream \($0.rawValue)" } ?? "--tasks") needs --backbone FILE.h5")
        }
        if stream == .fashionMNIST, let method = try methods().first(where: \.readsTexts) {
            throw ValidationError("--method \(method.rawValue) trains over the backbone on texts; fashion-mnist has images")
        }
        do { _ = try AdapterConfiguration(method: adapterMethod) } catch { throw ValidationError("--adapter-method: \(error)") }
        if let json { try checkWritable(json) }
        _ = try methods()
        _ = try strategies().map { try $0.validate() }
        let positive = [("--epochs", epochs), ("--batch-size", batchSize), ("--hidden-size", hiddenSize), ("--feature-size", featureSize),
                        ("--train-per-class", trainPerClass ?? 1), ("--test-per-class", testPerClass ?? 1), ("--unlabelled", unlabelled ?? 1)]
        if let bad = positive.first(where: { $0.1 <= 0 }) { throw ValidationError("\(bad.0) must be positive, got \(bad.1)") }
        guard kmeansIterations >= 0, refineEpochs >= 0 else { throw ValidationError("--kmeans-iterations and --refine-epochs must not be negative") }
    }

    func methods() throws -> [Method] {
        if method == "all" { return Method.onFeatures }
        return try method.split(separator: ",").map { name in
            guard let one = Method(rawValue: String(name)) else {
                throw ValidationError("--method takes \(Method.allCases.map(\.rawValue).joined(separator: ", ")) (comma-separated) or all, got \(name)")
            }
            return one
        }
    }

    func run() throws {
        try threads.apply()
        let clock = ContinuousClock(), started = clock.now
        let data = switch stream {
        case .bibleGenres?: try bibleGenres(.chichewaGenres, backbone: backbone ?? "", cache: cache.dataCache)
        case .englishBibleGenres?: try bibleGenres(.englishGenres, backbone: backbone ?? "", cache: cache.dataCache)
        case .languageGenres?: try languageGenres(backbone: backbone ?? "", cache: cache.dataCache)
        case .fashionMNIST?: try fashionMNIST(cache: cache.dataCache)
        case nil: try taskFiles(backbone: backbone ?? "")
        }
        let s = data.stream
        let streamName = stream?.rawValue ?? "tasks"
        emit("""
            \(streamName): \(s.classNames.count) classes in \(s.tasks.count) tasks; \(s.train.count) training and \(s.test.count) test \
            examples, features of size \(s.train.featureSize) (\(data.features)); \(data.unlabelled.shape[0]) unlabelled examples for the keys
            data ready in \(seconds(since: started)) s

            """)
        let taskNames = s.taskNames
        if try methods().contains(where: \.takesStrategies), try strategies().contains(where: { $0.memorySize >= s.train.count }) {
            FileHandle.standardError.write(Data("""
                note: --memory \(memory) holds all \(s.train.count) training examples of the stream: replay and GDumb keep every \
                example, which makes them joint training on all tasks so far

                """.utf8))
        }
        let overBackbone = try methods().contains(where: \.readsTexts) ? try textStream(data) : nil
        var summary: [String] = [], results: [RunResult] = []
        for method in try methods() {
            for strategy in method.takesStrategies ? try strategies() : [.naive] {
                let start = clock.now
                let (matrix, parameters, detail) = try run(method, strategy: strategy, data: data, overBackbone: overBackbone)
                let elapsed = (clock.now - start) / .seconds(1), time = String(format: "%.1f", elapsed)
                let rowSize = (method.readsTexts ? overBackbone?.stream : s)?.train.featureSize ?? 0
                let name = method.rawValue + (strategy == .naive ? "" : " + \(strategy)")
                results.append(RunResult(
                    name: name, description: detail, matrix: matrix.rows, averageAccuracy: matrix.averageAccuracy, forgetting: matrix.forgetting,
                    backwardTransfer: matrix.backwardTransfer, forwardTransfer: matrix.forwardTransfer,
                    trainableParameters: parameters, memoryExamples: strategy.memorySize,
                    memoryBytes: strategy.memorySize * (rowSize * MemoryLayout<Float>.size + MemoryLayout<Int>.size),
                    seconds: elapsed))
                let forward = matrix.forwardTransfer.map { String(format: "%.3f", $0) } ?? "-"
                emit("## \(name): \(detail)\n\n\(matrix.table(taskNames: taskNames))\n\n"
                     + String(format: "average accuracy %.3f, forgetting %.3f, backward transfer %.3f, forward transfer %@, %@ trainable parameters, %@ s\n",
                              matrix.averageAccuracy, matrix.forgetting, matrix.backwardTransfer, forward, grouped(parameters), time))
                summary.append(String(format: "| %@ | %.3f | %.3f | %.3f | %@ | %@ | %@ | %@ |", name, matrix.averageAccuracy, matrix.forgetting,
                                      matrix.backwardTransfer, forward, grouped(parameters), grouped(strategy.memorySize), time))
            }
        }
        emit((["## Summary\n",
               "| method | average accuracy | forgetting | backward transfer | forward transfer | trainable parameters | memory (examples) | seconds |",
               "|---|---:|---:|---:|---:|---:|---:|---:|"] + summary).joined(separator: "\n"))
        if let plot {
            let curves = results.map { run in
                (name: run.name.components(separatedBy: " (").first ?? run.name,
                 values: run.matrix.map { row in row.compactMap { $0 }.reduce(0, +) / Double(row.compactMap { $0 }.count) })
            }
            try writeAtomically(Data(linePlot(curves, xLabels: (1...s.tasks.count).map(String.init), xTitle: "tasks learned",
                                              yTitle: "average accuracy over the tasks so far").utf8), to: plot)
            emit("wrote \(plot)")
        }
        if let json {
            let report = StreamReport(stream: streamName, classes: s.classNames, tasks: taskNames, runs: results)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            try writeAtomically(try encoder.encode(report), to: json)
            emit("wrote \(json)")
        }
    }

    /// One run's results in `--json`'s file.
    struct RunResult: Encodable {
        let name: String, description: String
        /// `matrix[i][j]`: accuracy on task j after training task i (null for j > i).
        let matrix: [[Double?]]
        let averageAccuracy: Double, forgetting: Double, backwardTransfer: Double
        /// Null for joint training (a fresh learner after each task).
        let forwardTransfer: Double?
        let trainableParameters: Int, memoryExamples: Int
        /// The memory's examples as stored: features (or, over the backbone, token-id rows) in float32 plus a label each.
        let memoryBytes: Int
        let seconds: Double
    }

    /// `--json`'s file.
    struct StreamReport: Encodable {
        let stream: String, classes: [String], tasks: [String], runs: [RunResult]
    }

    /// The strategies `--strategy` names, with their settings.
    func strategies() throws -> [ContinualStrategy] {
        let all: [String: ContinualStrategy] = [
            "naive": .naive, "replay": .replay(memory: memory), "ewc": .ewc(lambda: ewcLambda),
            "lwf": .lwf(alpha: lwfAlpha, temperature: lwfTemperature), "gdumb": .gdumb(memory: memory),
        ]
        let names = strategy == "all" ? ["naive", "replay", "ewc", "lwf", "gdumb"] : strategy.split(separator: ",").map(String.init)
        return try names.map { name in
            guard let known = all[name] else {
                throw ValidationError("--strategy takes naive, replay, ewc, lwf, gdumb (comma-separated) or all, got \(name)")
            }
            return known
        }
    }

    /// The stream's texts as token-id rows (at most 128 tokens, as embedded), with the backbone that reads them.
    func textStream(_ data: StreamData) throws -> (backbone: Backbone, stream: ContinualStream) {
        guard let texts = data.texts else { throw CommandError("this stream has no texts for the methods over the backbone") }
        let model = try Backbone.load(from: backbone ?? "")
        let limit = model.tokenLimit(128)
        func rows(_ texts: [String], _ labels: [Int]) throws -> LabelledFeatures {
            try LabelledFeatures(tokenIDs: texts.map { model.tokenizer.encode($0, maxLength: limit) }, labels: labels, width: limit)
        }
        let s = data.stream
        return (model, try s.replacingRows(train: try rows(texts.train, s.train.labels), test: try rows(texts.test, s.test.labels)))
    }

    /// Trains and scores one method; returns its matrix, trainable parameter count and a description.
    func run(_ method: Method, strategy: ContinualStrategy, data: StreamData,
             overBackbone: (backbone: Backbone, stream: ContinualStream)?) throws -> (AccuracyMatrix, Int, String) {
        let s = data.stream, classes = s.classNames.count, size = s.train.featureSize
        let perTask = method == .linearPerTask || method == .adapterPerTask
        let schedule = ContinualSchedule(epochs: epochs, batchSize: batchSize, learningRate: learningRate,
                                         lossClasses: lossClasses ?? (perTask ? .task : .seen), seed: seed)
        func count(_ module: any Module) -> Int { module.trainableParameters().reduce(0) { $0 + $1.parameter.value.count } }
        func mlp() -> FeatureClassifier { FeatureClassifier(inputSize: size, hiddenSize: hiddenSize, classCount: classes, seed: seed &+ 1) }
        func adapterLearner(_ model: Backbone, seed: UInt64) throws -> AdapterLearner {
            try AdapterLearner(backbone: model, adapter: try AdapterConfiguration(method: adapterMethod), classCount: classes, seed: seed)
        }
        let log: (String) -> Void = { emit("    \(method.rawValue) \(strategy) \($0)") }
        switch method {
        case .linear:
            let probe = FeatureClassifier(inputSize: size, hiddenSize: nil, classCount: classes, seed: seed &+ 1)
            return (try ContinualLearning.train(probe, on: s, schedule: schedule, strategy: strategy, log: log), count(probe),
                    "linear probe, \(strategy), AdamW lr \(learningRate), \(epochs) epochs per task, batch \(batchSize), \(schedule.lossClasses.phrase)")
        case .mlp:
            let model = mlp()
            return (try ContinualLearning.train(model, on: s, schedule: schedule, strategy: strategy, log: log), count(model),
                    "MLP \(size)-\(hiddenSize)-\(classes) (ReLU), \(strategy), AdamW lr \(learningRate), \(epochs) epochs per task, batch \(batchSize), \(schedule.lossClasses.phrase)")
        case .joint:
            return (try ContinualLearning.trainJointly(mlp, on: s, schedule: schedule, log: log), count(mlp()),
                    "the MLP trained from scratch on all tasks so far, shuffled together (upper bound)")
        case .linearPerTask:
            let router = TaskRoutedLearner(experts: s.tasks.indices.map { task in
                FeatureClassifier(inputSize: size, hiddenSize: nil, classCount: classes, seed: seed &+ 1 &+ UInt64(task))
            }) { features, _ in features }
            let (matrix, routed) = try trainRouted(router, on: s, schedule: schedule, log: log)
            return (matrix, count(router),
                    "a linear probe per task, routed by the nearest task prototype (\(routed)), AdamW lr \(learningRate), \(epochs) epochs per task, batch \(batchSize), \(schedule.lossClasses.phrase)")
        case .adapter:
            let (model, texts) = overBackbone!
            let learner = try adapterLearner(model, seed: seed &+ 1)
            return (try ContinualLearning.train(learner, on: texts, schedule: schedule, strategy: strategy, log: log), count(learner),
                    "\(adapterMethod) adapter and head over \(model.name) (frozen), \(strategy), AdamW lr \(learningRate), \(epochs) epochs per task, batch \(batchSize), \(schedule.lossClasses.phrase)")
        case .adapterPerTask:
            let (model, texts) = overBackbone!
            let experts = try s.tasks.indices.map { try adapterLearner(model, seed: seed &+ 1 &+ UInt64($0)) }
            let router = TaskRoutedLearner(experts: experts) { _, ids in experts[0].frozenEmbeddings(ids) }
            let (matrix, routed) = try trainRouted(router, on: texts, schedule: schedule, log: log)
            return (matrix, count(router),
                    "a \(adapterMethod) adapter and head per task over \(model.name) (frozen), routed by the nearest task prototype of the frozen embeddings (\(routed)), AdamW lr \(learningRate), \(epochs) epochs per task, batch \(batchSize), \(schedule.lossClasses.phrase)")
        case .kv:
            let configuration = KeyValueBottleneckConfiguration(
                inputSize: size, heads: heads, keysPerHead: keys, keySize: keySize, valueSize: decoderSize ?? classes,
                splitter: splitter, decoderOutputs: decoderSize.map { _ in classes })
            let bottleneck = try KeyValueBottleneck(configuration: configuration, seed: seed &+ 2)
            var generator = SeededGenerator(seed: seed &+ 3)
            let clock = ContinuousClock(), start = clock.now
            try bottleneck.initializeKeys(keyInit == .random ? .random : .kMeans(iterations: kmeansIterations), data: data.unlabelled,
                                          generator: &generator)
            let replaced = try bottleneck.refineKeys(
                data: data.unlabelled, settings: KeyRefinement(epochs: refineEpochs, deadCodeThreshold: deadCodeThreshold), generator: &generator)
            try bottleneck.freezeKeys()
            bottleneck.skipsUntrainedValues = !kvAverageAllHeads
            emit("    kv key sharing: \(try keySharing(bottleneck, s))")
            let keyTime = seconds(since: start)
            var kvSchedule = schedule
            kvSchedule.learningRate = kvLearningRate
            kvSchedule.optimizer = kvOptimizer
            kvSchedule.lossClasses = lossClasses ?? .task
            let decoder = decoderSize.map { "values of size \($0), linear decoder" } ?? "values = logits (non-parametric decoder)"
            return (try ContinualLearning.train(bottleneck, on: s, schedule: kvSchedule, log: log), count(bottleneck),
                    "key-value bottleneck, \(splitter.rawValue) splitter, \(heads) heads x \(keys) keys of size \(keySize), \(decoder); "
                        + "\(kvOptimizer == .sgd ? "SGD" : "AdamW") lr \(kvLearningRate) (no weight decay), \(epochs) epochs per task, batch \(batchSize), \(kvSchedule.lossClasses.phrase); keys: \(keyInit.rawValue) "
                        + "initialisation, \(refineEpochs) EMA epochs, \(replaced) dead keys replaced, frozen after \(keyTime) s")
        }
    }

    /// Trains a routed learner (naive: each expert its own task) and measures its router: the share
    /// of test examples routed to their own task once every task is learned.
    func trainRouted<Expert>(_ router: TaskRoutedLearner<Expert>, on s: ContinualStream, schedule: ContinualSchedule,
                             log: (String) -> Void) throws -> (AccuracyMatrix, String) {
        let matrix = try ContinualLearning.train(router, on: s, schedule: schedule, log: log)
        let routes = router.route(try router.encode(s.test.features))
        let taskOf = Dictionary(uniqueKeysWithValues: s.tasks.enumerated().flatMap { task, t in t.test.map { ($0, task) } })
        let correct = routes.indices.filter { taskOf[$0] == routes[$0] }.count
        return (matrix, String(format: "%.3f of test examples routed to their task", Double(correct) / Double(routes.count)))
    }

    /// For each task, the share of its test examples' key selections (example, head) whose key
    /// some other task's training example also selects: where learning another task writes.
    func keySharing(_ bottleneck: KeyValueBottleneck, _ s: ContinualStream) throws -> String {
        let train = try bottleneck.codes(for: s.train.features), test = try bottleneck.codes(for: s.test.features)
        let keysOfTask = s.tasks.map { task in Set(task.train.flatMap { train.rows([$0]).indices }) }
        return s.tasks.indices.map { j in
            let others = keysOfTask.indices.filter { $0 != j }.reduce(into: Set<Int>()) { $0.formUnion(keysOfTask[$1]) }
            let selections = s.tasks[j].test.flatMap { test.rows([$0]).indices }
            return String(format: "task %d %.2f", j + 1, Double(selections.filter(others.contains).count) / Double(selections.count))
        }.joined(separator: ", ")
    }

    // MARK: Streams

    /// `bible-genres` (`recipe` chichewa-genres) and `english-bible-genres` (english-genres): backbone
    /// embeddings of a per-class sample of the verses, cached as an HDF5 feature file.
    func bibleGenres(_ recipe: DataRecipe, backbone path: String, cache: DataCache) throws -> StreamData {
        let (trainCount, testCount, unlabelledCount) = (trainPerClass ?? 300, testPerClass ?? 100, unlabelled ?? 1000)
        let model = try Backbone.load(from: path)
        let name = recipe == .chichewaGenres ? "bible-genres" : "english-bible-genres"
        let file = "\(cache.root)/features/\(name)-\(model.checksum.prefix(16))-\(trainCount)-\(testCount)-\(unlabelledCount).h5"
        let genres = Genre.allCases.map(\.rawValue)
        /// The seeded sample: training and test verses with their genres, unlabelled dev verses, each as embedded.
        typealias Sample = (train: [(text: String, label: Int)], test: [(text: String, label: Int)], dev: [String])
        func sample() throws -> Sample {
            try cache.prepare(recipe, log: emit)
            let records = try LabelledText.read(from: cache.path(of: recipe), labels: genres)
            func sample(_ split: DataSplit, perClass: Int) -> [(text: String, label: Int)] {
                genres.enumerated().flatMap { label, genre in
                    records.filter { $0.split == split && $0.label == genre }.sample(perClass, seed: 0).map { ("query: " + $0.text, label) }
                }
            }
            return (sample(.train, perClass: trainCount), sample(.test, perClass: testCount),
                    records.filter { $0.split == .dev }.sample(unlabelledCount, seed: 0).map { "query: " + $0.text })
        }
        var sampled: Sample?
        if !FileManager.default.fileExists(atPath: file) {
            let (train, test, dev) = try sample()
            sampled = (train, test, dev)
            let texts = train.map(\.text) + test.map(\.text) + dev
            emit("embedding \(texts.count) verses with \(model.name) (once; cached in \(file))")
            let start = ContinuousClock.now
            let vectors = model.embed(texts, maxLength: 128).embeddings
            emit("embedded in \(seconds(since: start)) s")
            func tensor(_ rows: ArraySlice<[Float]>) -> Tensor { Tensor(shape: [rows.count, vectors[0].count], scalars: rows.flatMap { $0 }) }
            try FileManager.default.createDirectory(atPath: "\(cache.root)/features", withIntermediateDirectories: true)
            let testEnd = train.count + test.count
            try FeatureCache(train: LabelledFeatures(features: tensor(vectors[..<train.count]), labels: train.map(\.label)),
                             test: LabelledFeatures(features: tensor(vectors[train.count..<testEnd]), labels: test.map(\.label)),
                             unlabelled: tensor(vectors[testEnd...]), backboneChecksum: model.checksum).save(to: file)
        }
        let features = try FeatureCache.load(from: file, backboneChecksum: model.checksum)
        let stream = try ContinualStream(classNames: genres, classesPerTask: [2, 2, 2, 2], train: features.train, test: features.test)
        if try methods().contains(where: \.readsTexts), sampled == nil { sampled = try sample() }
        return StreamData(stream: stream, unlabelled: features.unlabelled,
                          features: "\(model.name) embeddings, \(trainCount) train and up to \(testCount) test verses per genre, cached in \(file)",
                          texts: sampled.map { ($0.train.map(\.text), $0.test.map(\.text)) })
    }

    /// `language-genres`: English genres, then Chichewa genres, as one domain-incremental stream.
    func languageGenres(backbone path: String, cache: DataCache) throws -> StreamData {
        let english = try bibleGenres(.englishGenres, backbone: path, cache: cache), chichewa = try bibleGenres(.chichewaGenres, backbone: path, cache: cache)
        let stream = try ContinualStream(classNames: english.stream.classNames, domains: [
            ("English", english.stream.train, english.stream.test), ("Chichewa", chichewa.stream.train, chichewa.stream.test)])
        return StreamData(stream: stream, unlabelled: Tensor.concatenate([english.unlabelled, chichewa.unlabelled], alongAxis: 0),
                          features: "English, then Chichewa: \(english.features); \(chichewa.features)",
                          texts: english.texts.flatMap { english in chichewa.texts.map { (english.train + $0.train, english.test + $0.test) } })
    }

    /// `--tasks`: one labelled JSONL file per task, embedded by the backbone (not cached).
    func taskFiles(backbone path: String) throws -> StreamData {
        let files = (tasks ?? "").split(separator: ",").map(String.init)
        let records = try files.map { try LabelledText.read(from: $0) }
        let labelSets = records.map { Set($0.map(\.label)).sorted() }
        let sameClasses = files.count > 1 && labelSets.allSatisfy { $0 == labelSets[0] }
        var classNames: [String] = [], classesPerTask: [Int] = [], owner: [String: String] = [:]
        var texts: (train: [(String, Int)], test: [(String, Int)], unlabelled: [String]) = ([], [], [])
        var trainCounts: [Int] = [], testCounts: [Int] = []
        for (file, (records, labels)) in zip(files, zip(records, labelSets)) {
            if !sameClasses, let shared = labels.first(where: { owner[$0] != nil }) {
                throw CommandError("""
                    \(file) has label "\(shared)", which \(owner[shared]!) already has: in a class-incremental stream each class \
                    belongs to one task; a domain-incremental stream needs every file to have the same classes
                    """)
            }
            for label in labels { owner[label] = file }
            let index = Dictionary(uniqueKeysWithValues: labels.enumerated().map { ($1, (sameClasses ? 0 : classNames.count) + $0) })
            if !sameClasses || classNames.isEmpty { classNames += labels }
            classesPerTask.append(labels.count)
            let (train, test) = (records.filter { $0.split == .train }, records.filter { $0.split == .test })
            texts.train += train.map { (textPrefix + $0.text, index[$0.label]!) }
            texts.test += test.map { (textPrefix + $0.text, index[$0.label]!) }
            texts.unlabelled += records.filter { $0.split == .dev }.map { textPrefix + $0.text }
            trainCounts.append(train.count)
            testCounts.append(test.count)
        }
        if texts.unlabelled.isEmpty { texts.unlabelled = texts.train.map(\.0) }
        let model = try Backbone.load(from: path)
        emit("embedding \(texts.train.count + texts.test.count + texts.unlabelled.count) texts with \(model.name)")
        func features(_ batch: [String]) -> Tensor {
            let vectors = model.embed(batch, maxLength: 128).embeddings
            return Tensor(shape: [batch.count, model.configuration.hiddenSize], scalars: vectors.flatMap { $0 })
        }
        let train = try LabelledFeatures(features: features(texts.train.map(\.0)), labels: texts.train.map(\.1))
        let test = try LabelledFeatures(features: features(texts.test.map(\.0)), labels: texts.test.map(\.1))
        let stream: ContinualStream
        if sameClasses {
            func part(_ data: LabelledFeatures, _ counts: [Int], _ file: Int) throws -> LabelledFeatures {
                let rows = Array(counts[..<file].reduce(0, +)..<counts[...file].reduce(0, +))
                return try LabelledFeatures(features: data.features.gatherRows(rows), labels: rows.map { data.labels[$0] })
            }
            stream = try ContinualStream(classNames: classNames, domains: try files.indices.map { file in
                (URL(fileURLWithPath: files[file]).lastPathComponent, try part(train, trainCounts, file), try part(test, testCounts, file))
            })
        } else {
            stream = try ContinualStream(classNames: classNames, classesPerTask: classesPerTask, train: train, test: test)
        }
        return StreamData(stream: stream, unlabelled: features(texts.unlabelled),
                          features: "\(model.name) embeddings of \(files.count) files, prefix \"\(textPrefix)\"",
                          texts: (texts.train.map(\.0), texts.test.map(\.0)))
    }

    /// `fashion-mnist`: a per-class sample of the prepared images, pixels through a fixed random projection.
    func fashionMNIST(cache: DataCache) throws -> StreamData {
        let (trainCount, testCount, unlabelledCount) = (trainPerClass ?? 1000, testPerClass ?? 500, unlabelled ?? 5000)
        let (train, test) = try FashionMNIST.load(cache: cache, log: emit)
        var generator = SeededGenerator(seed: 0)
        let pixels = train.height * train.width
        let projection = Tensor.normal(shape: [pixels, featureSize], standardDeviation: 1 / Float(pixels).squareRoot(), generator: &generator)
        func perClass(_ images: LabelledImages, _ count: Int) -> [Int] {
            FashionMNIST.classNames.indices.flatMap { label in
                images.labels.indices.filter { images.labels[$0] == label }.sample(count, seed: 0)
            }
        }
        func features(_ images: LabelledImages, _ rows: [Int]) -> Tensor {
            let scaled = rows.flatMap { row in images.pixels[(row * pixels)..<((row + 1) * pixels)].map { Float($0) / 255 } }
            return Tensor.matmul(Tensor(shape: [rows.count, pixels], scalars: scaled), projection)
        }
        let trainRows = perClass(train, trainCount), testRows = perClass(test, testCount)
        let chosen = Set(trainRows)
        let unlabelledRows = train.labels.indices.filter { !chosen.contains($0) }.sample(unlabelledCount, seed: 1)
        let stream = try ContinualStream(
            classNames: FashionMNIST.classNames, classesPerTask: [2, 2, 2, 2, 2],
            train: LabelledFeatures(features: features(train, trainRows), labels: trainRows.map { train.labels[$0] }),
            test: LabelledFeatures(features: features(test, testRows), labels: testRows.map { test.labels[$0] }))
        return StreamData(stream: stream, unlabelled: features(train, unlabelledRows),
                          features: "784 pixels in [0, 1] x a fixed N(0, 1/784) projection; "
                              + "\(trainCount) train and \(testCount) test images per class")
    }
}

extension ContinualSchedule.LossClasses {
    /// The loss setting in words, for the method descriptions.
    var phrase: String {
        switch self {
        case .seen: "loss over all classes seen so far"
        case .task: "loss over each task's own classes"
        case .all: "loss over every output, classes to come included"
        }
    }
}

/// A stream with the unlabelled features the keys are fitted on.
struct StreamData {
    let stream: ContinualStream
    let unlabelled: Tensor
    /// What the features are, in words.
    let features: String
    /// The texts of the training and test rows, in the stream's order, when its examples are texts
    /// (read only for the methods over the backbone).
    var texts: (train: [String], test: [String])? = nil
}

/// Prints a line at once.
private func emit(_ line: String) {
    print(line)
    fflush(nil)
}

private func seconds(since start: ContinuousClock.Instant) -> String {
    String(format: "%.1f", Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000)
}

