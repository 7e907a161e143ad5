import ArgumentParser
import Foundation
import Graft

/// `adapt concepts`: concept bottleneck models on the Zoo animals, from a frozen backbone's name embeddings.
struct Concepts: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Concept bottleneck models (CBM, LaBo-style, energy-based) on Zoo: accuracy and test-time intervention.",
        discussion: """
            Input: the backbone's embedding of PREFIX + NAME for each of the 101 animals of the prepared \
            `zoo` set (run `adapt data prepare zoo`); concepts: its 16 attributes as 21 binary concepts \
            (legs one-hot over 0, 2, 4, 5, 6, 8); classes: 7. Evaluation: stratified k-fold cross-validation, \
            repeated with different shuffles. Reports concept accuracy, class accuracy and class accuracy \
            after intervening on 0...16 attributes (random order per animal), as Markdown on standard output \
            and, with --svg, as a plot. A linear probe (embedding -> class) is the reference.
            """)

    @Option(help: "The backbone file (made by `adapt import`).") var backbone: String
    @Option(help: "Text put before each name and concept sentence (e5's convention; \"\" for other encoders).")
    var prefix = "query: "
    @Option(help: "cbm (independent, sequential and joint), labo, ecbm or all.") var method = "all"
    @Option(help: "Cross-validation folds (stratified).") var folds = 5
    @Option(help: "Repetitions of the cross-validation with different shuffles.") var repeats = 3
    @Option(help: "Full-batch AdamW updates per trained part.") var steps = 300
    @Option(help: "AdamW learning rate (CBM, ECBM and the probe).") var learningRate: Float = 1e-2
    @Option(help: "AdamW learning rate of LaBo's association matrix.") var laboLearningRate: Float = 1e-1
    @Option(help: "AdamW decoupled weight decay.") var weightDecay: Float = 0.01
    @Option(help: "Weight of the concept loss in joint CBM training (the reference's is 0.01, too small here to learn the concepts: Docs/concepts-experiment.md).")
    var conceptLossWeight: Float = 1
    @Option(help: "Concept sentences LaBo selects per class.") var laboConcepts = 8
    @Option(help: "LaBo's factor on the logits.") var laboScale: Float = 50
    @Option(help: "Weight of discriminability against coverage in LaBo's selection (0...1).") var selectionWeight: Float = 0.5
    @Option(help: "ECBM's concept-class energy weight (λ_g, in training and inference).") var ecbmGlobalWeight: Float = 1
    @Option(help: "Random intervention orders averaged per test fold.") var orders = 5
    @Option(help: "Seed of the folds, initialisations and intervention orders.") var seed: UInt64 = 0
    @Option(help: "Write the intervention curves as an SVG plot to this file.") var svg: String?
    @OptionGroup var cache: CacheOption
    @OptionGroup var threads: ThreadsOption

    static let methods = ["cbm", "labo", "ecbm", "all"]

    func validate() throws {
        guard Self.methods.contains(method) else {
            throw ValidationError("unknown --method \(method); expected one of \(Self.methods.joined(separator: ", "))")
        }
        guard folds >= 2, repeats >= 1, steps >= 1, orders >= 1, laboConcepts >= 1 else {
            throw ValidationError("--folds must be at least 2 and --repeats, --steps, --orders, --labo-concepts at least 1")
        }
    }

    func run() throws {
        try threads.apply()
        let dataCache = cache.dataCache
        guard try dataCache.isPrepared(.zoo) else {
            throw CommandError("the zoo set is not prepared (no \(dataCache.path(of: .zoo))); run `adapt data prepare zoo`")
        }
        let animals = try ZooAnimal.read(from: dataCache.path(of: .zoo))
        let model = try Backbone.load(from: backbone)
        let started = Date()
        let inputs = embeddings(of: animals.map { prefix + $0.name }, model)
        let sentenceEmbeddings = embeddings(of: conceptSentences.map { prefix + $0 }, model)
        let data = try ConceptDataset(inputs: inputs, concepts: Tensor(shape: [animals.count, ZooAnimal.conceptNames.count],
                                                                       scalars: animals.flatMap(\.binaryConcepts)),
                                      labels: animals.map(\.classIndex), classCount: ZooAnimal.classes.count)
        let names = ["linear probe"] + (["cbm", "all"].contains(method) ? CBMTraining.allCases.map { "CBM \($0.rawValue)" } : [])
            + (["labo", "all"].contains(method) ? ["LaBo"] : []) + (["ecbm", "all"].contains(method) ? ["ECBM"] : [])
        var results = [String: [FoldRun]]()
        for repetition in 0..<repeats {
            let folds = stratifiedFolds(labels: data.labels, classCount: data.classCount, folds: folds, seed: seed &+ UInt64(repetition))
            for (index, test) in folds.enumerated() {
                let train = Set(0..<data.count).subtracting(test).sorted()
                let foldSeed = seed &+ UInt64(repetition * folds.count + index)
                for (name, evaluation) in try runFold(train: data.subset(train), test: data.subset(test),
                                                      sentenceEmbeddings: sentenceEmbeddings, seed: foldSeed) {
                    results[name, default: []].append(FoldRun(evaluation: evaluation, count: test.count, repetition: repetition))
                }
            }
        }
        print(report(names: names, results: results, animals: animals, seconds: Date().timeIntervalSince(started)))
        if let svg {
            let curves = names.dropFirst().map { name in (name, pooledCurve(results[name]!).map(\.mean)) }
            try writeAtomically(Data(interventionPlot(curves, probe: pooled(results["linear probe"]!, \.classAccuracy).mean).utf8), to: svg)
        }
    }

    /// L2-normalised embeddings of `texts`, `[texts, hidden]`.
    func embeddings(of texts: [String], _ model: Backbone) -> Tensor {
        let vectors = model.embed(texts).embeddings
        return Tensor(shape: [texts.count, model.configuration.hiddenSize], scalars: vectors.flatMap { $0 })
    }

    var optimizer: OptimizerFactory { { AdamW(parameters: $0, learningRate: learningRate, weightDecay: weightDecay) } }

    /// Trains every model on one fold and scores it on the held-out animals.
    func runFold(train: ConceptDataset, test: ConceptDataset, sentenceEmbeddings: Tensor, seed: UInt64) throws -> [(String, ConceptEvaluation)] {
        let groups = ZooAnimal.conceptGroups.map(\.concepts)
        var generator = SeededGenerator(seed: seed)
        let probe = Linear(inputSize: train.featureCount, outputSize: train.classCount, generator: &generator)
        minimise(probe.namedParameters().map(\.parameter), steps: steps, optimizer: optimizer) { tape in
            Variable.crossEntropy(logits: probe(Variable(train.inputs), tape: tape), targets: train.labels)
        }
        let probeAccuracy = Double(zip(probe(Variable(test.inputs)).value.argmax(), test.labels).count(where: { $0 == $1 }))
            / Double(test.count)
        var results = [("linear probe", ConceptEvaluation(conceptAccuracy: .nan, classAccuracy: probeAccuracy, interventionCurve: []))]
        if ["cbm", "all"].contains(method) {
            for mode in CBMTraining.allCases {
                let cbm = ConceptBottleneckModel(featureCount: train.featureCount, conceptCount: train.conceptCount,
                                                 classCount: train.classCount, seed: seed)
                try cbm.train(train, mode: mode, steps: steps, conceptLossWeight: conceptLossWeight, optimizer: optimizer)
                results.append(("CBM \(mode.rawValue)", try cbm.evaluate(test, groups: groups, orders: orders, seed: seed)))
            }
        }
        if ["labo", "all"].contains(method) {
            results.append(("LaBo", try runLaBo(train: train, test: test, sentenceEmbeddings: sentenceEmbeddings, seed: seed)))
        }
        if ["ecbm", "all"].contains(method) {
            var configuration = EnergyCBMConfiguration()
            configuration.globalWeight = ecbmGlobalWeight
            let ecbm = try EnergyConceptBottleneck(featureCount: train.featureCount, conceptCount: train.conceptCount,
                                                   classCount: train.classCount, configuration: configuration, seed: seed)
            try ecbm.train(train, steps: steps, optimizer: optimizer)
            results.append(("ECBM", try ecbm.evaluate(test, groups: groups, orders: orders, seed: seed)))
        }
        return results
    }

    /// LaBo on one fold: each class's candidates are the concept sentences true of more than half of
    /// its training animals (all sentences if none is), a submodular selection per class, training of `W`.
    func runLaBo(train: ConceptDataset, test: ConceptDataset, sentenceEmbeddings: Tensor, seed: UInt64) throws -> ConceptEvaluation {
        let candidates = ConceptSelection.majorityCandidates(train)
        let discriminability = try ConceptSelection.discriminability(concepts: sentenceEmbeddings, inputs: train.inputs,
                                                                     labels: train.labels, classCount: train.classCount)
        let selected = try ConceptSelection.select(candidates: candidates, concepts: sentenceEmbeddings,
                                                   discriminability: discriminability, count: laboConcepts, weight: selectionWeight)
        let used = Array(Set(selected.joined())).sorted()
        let position = Dictionary(uniqueKeysWithValues: used.enumerated().map { ($1, $0) })
        let labo = try LaBo(conceptEmbeddings: sentenceEmbeddings.gatherRows(used),
                            classConcepts: selected.map { $0.map { position[$0]! } }, scale: laboScale)
        func restricted(_ data: ConceptDataset) throws -> ConceptDataset {
            try ConceptDataset(inputs: data.inputs, concepts: data.concepts.permuted([1, 0]).gatherRows(used).permuted([1, 0]),
                               labels: data.labels, classCount: data.classCount)
        }
        try labo.train(try restricted(train), steps: steps) { AdamW(parameters: $0, learningRate: laboLearningRate, weightDecay: 0) }
        let groups = ZooAnimal.conceptGroups.map { group in group.concepts.compactMap { position[$0] } }
        return try labo.evaluate(try restricted(test), groups: groups, orders: orders, seed: seed)
    }

    func report(names: [String], results: [String: [FoldRun]],
                animals: [ZooAnimal], seconds: Double) -> String {
        func cell(_ value: (mean: Double, deviation: Double)) -> String {
            value.mean.isNaN ? "-" : String(format: "%.3f ± %.3f", value.mean, value.deviation)
        }
        var lines = [
            "Zoo: \(animals.count) animals (inputs \"\(prefix)NAME\"), \(ZooAnimal.conceptNames.count) binary concepts in \(ZooAnimal.attributes.count) attributes, "
                + "\(ZooAnimal.classes.count) classes; \(folds)-fold stratified cross-validation x \(repeats) repeats (seed \(seed)); "
                + "\(steps) full-batch AdamW steps (lr \(learningRate), weight decay \(weightDecay); LaBo lr \(laboLearningRate), no weight decay); "
                + "joint CBM lambda \(conceptLossWeight); ECBM lambda_g \(ecbmGlobalWeight); LaBo: \(laboConcepts) of \(conceptSentences.count) sentences per class, scale \(laboScale), "
                + "selection weight \(selectionWeight); \(orders) intervention orders per fold. Run time \(String(format: "%.0f", seconds)) s.",
            "",
            "| model | concept accuracy | class accuracy |",
            "|---|---:|---:|",
        ]
        for name in names {
            lines.append("| \(name) | \(cell(pooled(results[name]!, \.conceptAccuracy))) | \(cell(pooled(results[name]!, \.classAccuracy))) |")
        }
        let curves = names.dropFirst().map { pooledCurve(results[$0]!) }
        lines += ["", "Class accuracy after intervening on k attributes (mean over folds and repeats):", "",
                  "| k | " + names.dropFirst().joined(separator: " | ") + " |",
                  "|---:|" + String(repeating: "---:|", count: curves.count)]
        for k in 0..<(curves.first?.count ?? 0) {
            lines.append("| \(k) | " + curves.map { String(format: "%.3f", $0[k].mean) }.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }
}

/// One sentence per binary concept, for LaBo: `an animal that has hair`, ..., `an animal that has four legs`.
let conceptSentences: [String] = {
    let phrases = [
        "hair": "has hair", "feathers": "has feathers", "eggs": "lays eggs", "milk": "feeds its young with milk",
        "airborne": "can fly", "aquatic": "lives in water", "predator": "is a predator", "toothed": "has teeth",
        "backbone": "has a backbone", "breathes": "breathes air", "venomous": "is venomous", "fins": "has fins",
        "tail": "has a tail", "domestic": "is domesticated", "catsize": "is as big as a cat or bigger",
    ]
    let legs = [0: "has no legs", 2: "has two legs", 4: "has four legs", 5: "has five legs", 6: "has six legs", 8: "has eight legs"]
    return ZooAnimal.attributes.flatMap { name in
        name == "legs" ? ZooAnimal.legCounts.map { legs[$0]! } : [phrases[name]!]
    }.map { "an animal that \($0)" }
}()
