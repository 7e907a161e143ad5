import ArgumentParser
import Foundation
import Graft

/// An adapter method and the settings that override its defaults, as flags.
struct AdapterOptions: ParsableArguments {
    @Option(help: "Adapter method: \(AdapterConfiguration.methods.keys.sorted().joined(separator: ", ")).")
    var method: String = "seq_bn"
    @Option(help: "Bottleneck methods: hidden size divided by bottleneck size.")
    var reductionFactor: Float?
    @Option(help: "lora, mos: rank r of each layer's update.")
    var rank: Int?
    @Option(help: "lora, mos: the update is scaled by alpha / r.")
    var alpha: Float?
    @Option(help: "lora, mos: comma-separated linear slots (\(LinearSlot.allCases.map(\.rawValue).joined(separator: ", "))).")
    var targets: String?
    @Option(help: "Comma-separated layer indices that get no adapter.")
    var leaveOut: String?
    @Option(help: "mos: the trainable budget, equal to LoRA at this rank.")
    var validRank: Int?
    @Option(help: "mos: shards per low-rank vector.")
    var shards: Int?
    @Option(help: "mos: ranks' worth of shards private to each layer.")
    var privateRank: Int?

    /// The method-specific flags given on the command line (`--leave-out` applies to every method).
    var methodFlags: [String] {
        [("--reduction-factor", reductionFactor != nil), ("--rank", rank != nil), ("--alpha", alpha != nil),
         ("--targets", targets != nil), ("--valid-rank", validRank != nil), ("--shards", shards != nil),
         ("--private-rank", privateRank != nil)].filter(\.1).map(\.0)
    }

    /// The method's defaults with the given flags applied.
    func configuration() throws -> AdapterConfiguration {
        var configuration: AdapterConfiguration
        do { configuration = try AdapterConfiguration(method: method) } catch { throw ValidationError("\(error)") }
        let leaveOut = try leaveOut.map(Self.layers)
        let targets = try targets.map(Self.slots)
        let given = methodFlags
        let applicable: Set<String>
        switch configuration {
        case .bottleneck(var c):
            applicable = ["--reduction-factor"]
            if let reductionFactor { c.reductionFactor = reductionFactor }
            if let leaveOut { c.leaveOut = leaveOut }
            configuration = .bottleneck(c)
        case .lora(var c):
            applicable = ["--rank", "--alpha", "--targets"]
            if let rank { c.rank = rank }
            if let alpha { c.alpha = alpha }
            if let targets { c.targets = targets }
            if let leaveOut { c.leaveOut = leaveOut }
            configuration = .lora(c)
        case .mos(var c):
            applicable = ["--rank", "--alpha", "--targets", "--valid-rank", "--shards", "--private-rank"]
            if let rank { c.rank = rank }
            if let alpha { c.alpha = alpha }
            if let targets { c.targets = targets }
            if let leaveOut { c.leaveOut = leaveOut }
            if let validRank { c.validRank = validRank }
            if let shards { c.shards = shards }
            if let privateRank { c.privateRank = privateRank }
            configuration = .mos(c)
        }
        let unused = given.filter { !applicable.contains($0) }
        guard unused.isEmpty else {
            throw ValidationError("\(unused.joined(separator: ", ")) do\(unused.count == 1 ? "es" : "") not apply to \(method)")
        }
        return configuration
    }

    private static func layers(_ list: String) throws -> [Int] {
        try list.split(separator: ",").map { item in
            guard let layer = Int(item.trimmingCharacters(in: .whitespaces)), layer >= 0 else {
                throw ValidationError("--leave-out expects comma-separated layer indices, found \"\(item)\"")
            }
            return layer
        }
    }

    private static func slots(_ list: String) throws -> [LinearSlot] {
        try list.split(separator: ",").map { item in
            guard let slot = LinearSlot(rawValue: item.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("unknown target \"\(item)\"; expected \(LinearSlot.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return slot
        }
    }
}

/// `adapt params --config config.json --method NAME`: parameter counts without loading weights.
struct Params: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Count an adapter's trainable parameters on a model shape, without loading any weights.",
        discussion: """
            Prints one line, trainable=N total=M: N counts the adapter's own parameters, M the \
            backbone's (embeddings and layers, plus BERT's pooler with --pooler) plus N.
            """)

    @Option(help: "A Hugging Face config.json giving the model's shape.")
    var config: String
    @OptionGroup var adapter: AdapterOptions
    @Flag(help: "Count BERT's pooler in the backbone total.")
    var pooler = false

    func validate() throws { _ = try adapter.configuration() }

    func run() throws {
        let model: EncoderConfiguration
        do {
            model = try JSONDecoder().decode(EncoderConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: config)))
        } catch {
            throw ValidationError("cannot read the model configuration \(config): \(error)")
        }
        let configuration = try adapter.configuration()
        do { try configuration.validate(model: model) } catch { throw ValidationError("\(error)") }
        let trainable = configuration.parameterCount(model: model)
        print("trainable=\(trainable) total=\(model.parameterCount(withPooler: pooler) + trainable)")
    }
}
