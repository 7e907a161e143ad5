import ArgumentParser
import Foundation
import Graft

/// An adapter method and the settings that override its defaults, as flags.
struct AdapterOptions: ParsableArguments {
    @Option(help: "Adapter method: \(AdapterMethods.names.joined(separator: ", ")).")
    var method: String = "seq_bn"
    @Option(help: "\(methods(taking: .reductionFactor)): hidden size divided by bottleneck size.")
    var reductionFactor: Float?
    @Option(help: "\(methods(taking: .rank)): rank r of each layer's update.")
    var rank: Int?
    @Option(help: "\(methods(taking: .alpha)): the update is scaled by alpha / r.")
    var alpha: Float?
    @Option(help: "\(methods(taking: .targets)): comma-separated linear slots (\(LinearSlot.allCases.map(\.rawValue).joined(separator: ", "))).")
    var targets: String?
    @Option(help: "Comma-separated layer indices that get no adapter.")
    var leaveOut: String?
    @Option(help: "\(methods(taking: .validRank)): the trainable budget, equal to LoRA at this rank.")
    var validRank: Int?
    @Option(help: "\(methods(taking: .shards)): shards per low-rank vector.")
    var shards: Int?
    @Option(help: "\(methods(taking: .privateRank)): ranks' worth of shards private to each layer.")
    var privateRank: Int?

    private static func methods(taking option: AdapterOption) -> String {
        AdapterMethods.methods(taking: option).joined(separator: ", ")
    }

    /// The adapter settings given on the command line.
    func overrides() throws -> AdapterOverrides {
        AdapterOverrides(reductionFactor: reductionFactor, rank: rank, alpha: alpha, targets: try targets.map(Self.slots),
                         leaveOut: try leaveOut.map(Self.layers), validRank: validRank, shards: shards, privateRank: privateRank)
    }

    /// The adapter flags given on the command line.
    func givenFlags() throws -> [String] { try overrides().given.map(Self.flag) }

    private static func flag(_ option: AdapterOption) -> String { "--\(option.rawValue)" }

    /// The method's defaults with the given flags applied.
    func configuration() throws -> AdapterConfiguration {
        let defaults: any AdapterMethodSettings
        do { defaults = try AdapterMethods.defaults(method) } catch { throw ValidationError("\(error)") }
        let overrides = try overrides()
        let unused = overrides.given.filter { !type(of: defaults).options.contains($0) }.map(Self.flag)
        guard unused.isEmpty else {
            throw ValidationError("\(unused.joined(separator: ", ")) do\(unused.count == 1 ? "es" : "") not apply to \(method)")
        }
        do { return AdapterConfiguration(try defaults.applying(overrides)) } catch { throw ValidationError("\(error)") }
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
        let model = try decodeJSON(EncoderConfiguration.self, fromFile: config)
        let configuration = try adapter.configuration()
        do { try configuration.validate(model: model) } catch { throw ValidationError("\(error)") }
        let trainable = configuration.parameterCount(model: model)
        print("trainable=\(trainable) total=\(model.parameterCount(withPooler: pooler) + trainable)")
    }
}
