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
    @Option(help: "Weight of the concept loss in joint CBM training (the reference's 0.01).") var conceptLossWeight: Float = 0.01
    @Option(help: "Concept sentences LaBo selects per class.") var laboConcepts = 8
    @Option(help: "LaBo's factor on the logits.") var laboScale: Float = 50
    @Option(help: "Weight of discriminability against coverage in LaBo's selection (0...1).") var selectionWeight: Float = 0.5
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
            throw ValidationError("the zoo set is not prepared (no \(dataCache.path(of: .zoo))); run `adapt data prepare zoo`")
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
        var results = [String: [Run]]()
        for repetition in 0..<repeats {
            let folds = stratifiedFolds(labels: data.labels, classCount: data.classCount, seed: seed &+ UInt64(repetition))
            for (index, test) in folds.enumerated() {
                let train = Set(0..<data.count).subtracting(test).sorted()
                let foldSeed = seed &+ UInt64(repetition * folds.count + index)
                for (name, evaluation) in try runFold(train: data.subset(train), test: data.subset(test),
                                                      sentenceEmbeddings: sentenceEmbeddings, seed: foldSeed) {
                    results[name, default: []].append((evaluation, test.count, repetition))
                }
            }
        }
        print(report(names: names, results: results, animals: animals, seconds: Date().timeIntervalSince(started)))
        if let svg {
            let curves = names.dropFirst().map { name in (name, pooledCurve(results[name]!).map(\.mean)) }
            try Data(interventionPlot(curves, probe: pooled(results["linear probe"]!, \.classAccuracy).mean).utf8)
                .write(to: URL(fileURLWithPath: svg), options: .atomic)
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
            let ecbm = try EnergyConceptBottleneck(featureCount: train.featureCount, conceptCount: train.conceptCount,
                                                   classCount: train.classCount, seed: seed)
            try ecbm.train(train, steps: steps, optimizer: optimizer)
            results.append(("ECBM", try ecbm.evaluate(test, groups: groups, orders: orders, seed: seed)))
        }
        return results
    }

    /// LaBo on one fold: each class's candidates are the concept sentences true of more than half of
    /// its training animals (all sentences if none is), a submodular selection per class, training of `W`.
    func runLaBo(train: ConceptDataset, test: ConceptDataset, sentenceEmbeddings: Tensor, seed: UInt64) throws -> ConceptEvaluation {
        let candidates = (0..<train.classCount).map { label in
            let members = train.labels.indices.filter { train.labels[$0] == label }
            let common = (0..<train.conceptCount).filter { concept in
                2 * members.count(where: { train.concepts[$0, concept] == 1 }) > members.count
            }
            return common.isEmpty ? Array(0..<train.conceptCount) : common
        }
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

    /// Folds of example indices: each class's members shuffled and dealt round-robin,
    /// continuing from class to class so that the folds' sizes differ by at most one.
    func stratifiedFolds(labels: [Int], classCount: Int, seed: UInt64) -> [[Int]] {
        var generator = SeededGenerator(seed: seed)
        var folds = [[Int]](repeating: [], count: self.folds), next = 0
        for label in 0..<classCount {
            for example in labels.indices.filter({ labels[$0] == label }).shuffled(using: &generator) {
                folds[next % self.folds].append(example)
                next += 1
            }
        }
        return folds.map { $0.sorted() }
    }

    /// One model's score on one test fold.
    typealias Run = (evaluation: ConceptEvaluation, count: Int, repeat: Int)

    /// The mean of `value` over all held-out animals (folds weighted by size) and its standard deviation over repeats.
    func pooled(_ runs: [Run], _ value: (ConceptEvaluation) -> Double) -> (mean: Double, deviation: Double) {
        let perRepeat = Dictionary(grouping: runs, by: \.repeat).values.map { group in
            group.reduce(0) { $0 + value($1.evaluation) * Double($1.count) } / Double(group.reduce(0) { $0 + $1.count })
        }
        let mean = perRepeat.reduce(0, +) / Double(perRepeat.count)
        let variance = perRepeat.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(perRepeat.count - 1, 1))
        return (mean, variance.squareRoot())
    }

    /// `pooled` at every point of the intervention curve.
    func pooledCurve(_ runs: [Run]) -> [(mean: Double, deviation: Double)] {
        (0..<(runs.first?.evaluation.interventionCurve.count ?? 0)).map { k in pooled(runs) { $0.interventionCurve[k] } }
    }

    func report(names: [String], results: [String: [Run]],
                animals: [ZooAnimal], seconds: Double) -> String {
        func cell(_ value: (mean: Double, deviation: Double)) -> String {
            value.mean.isNaN ? "-" : String(format: "%.3f ± %.3f", value.mean, value.deviation)
        }
        var lines = [
            "Zoo: \(animals.count) animals (inputs \"\(prefix)NAME\"), \(ZooAnimal.conceptNames.count) binary concepts in \(ZooAnimal.attributes.count) attributes, "
                + "\(ZooAnimal.classes.count) classes; \(folds)-fold stratified cross-validation x \(repeats) repeats (seed \(seed)); "
                + "\(steps) full-batch AdamW steps (lr \(learningRate), LaBo \(laboLearningRate), weight decay \(weightDecay)); "
                + "joint CBM lambda \(conceptLossWeight); LaBo: \(laboConcepts) of \(conceptSentences.count) sentences per class, scale \(laboScale), "
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

/// A line plot of intervention curves (class accuracy against attributes
/// intervened), with the linear probe's accuracy as a dashed line.
func interventionPlot(_ curves: [(name: String, values: [Double])], probe: Double) -> String {
    let (width, height, left, right, top, bottom) = (640.0, 400.0, 60.0, 170.0, 20.0, 50.0)
    let points = curves.map(\.values.count).max() ?? 1
    func x(_ k: Int) -> Double { left + Double(k) / Double(max(points - 1, 1)) * (width - left - right) }
    func y(_ accuracy: Double) -> Double { height - bottom - accuracy * (height - top - bottom) }
    let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    func format(_ value: Double) -> String { String(format: "%.1f", value) }
    var svg = [
        ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Int(width))" height="\##(Int(height))" font-family="sans-serif" font-size="12">"##,
        ##"<rect width="100%" height="100%" fill="white"/>"##,
    ]
    for tick in stride(from: 0.0, through: 1.0, by: 0.2) {
        svg.append(##"<line x1="\##(format(left))" y1="\##(format(y(tick)))" x2="\##(format(width - right))" y2="\##(format(y(tick)))" stroke="#ddd"/>"##)
        svg.append(##"<text x="\##(format(left - 8))" y="\##(format(y(tick) + 4))" text-anchor="end">\##(String(format: "%.1f", tick))</text>"##)
    }
    for k in stride(from: 0, to: points, by: 2) {
        svg.append(##"<text x="\##(format(x(k)))" y="\##(format(height - bottom + 18))" text-anchor="middle">\##(k)</text>"##)
    }
    svg.append(##"<text x="\##(format((left + width - right) / 2))" y="\##(format(height - 10))" text-anchor="middle">attributes intervened</text>"##)
    svg.append(##"<text transform="translate(16 \##(format((top + height - bottom) / 2))) rotate(-90)" text-anchor="middle">class accuracy</text>"##)
    svg.append(##"<line x1="\##(format(left))" y1="\##(format(y(probe)))" x2="\##(format(width - right))" y2="\##(format(y(probe)))" stroke="#555" stroke-dasharray="5 4"/>"##)
    var legend = [("linear probe", "#555", true)]
    for (index, curve) in curves.enumerated() {
        let colour = colours[index % colours.count]
        let path = curve.values.enumerated().map { "\(format(x($0.offset))),\(format(y($0.element)))" }.joined(separator: " ")
        svg.append(##"<polyline points="\##(path)" fill="none" stroke="\##(colour)" stroke-width="2"/>"##)
        legend.append((curve.name, colour, false))
    }
    for (index, (name, colour, dashed)) in legend.enumerated() {
        let row = top + 10 + Double(index) * 18
        svg.append(##"<line x1="\##(format(width - right + 12))" y1="\##(format(row))" x2="\##(format(width - right + 36))" y2="\##(format(row))" stroke="\##(colour)" stroke-width="2"\##(dashed ? #" stroke-dasharray="5 4""# : "")/>"##)
        svg.append(##"<text x="\##(format(width - right + 42))" y="\##(format(row + 4))">\##(name)</text>"##)
    }
    svg.append("</svg>")
    return svg.joined(separator: "\n") + "\n"
}
