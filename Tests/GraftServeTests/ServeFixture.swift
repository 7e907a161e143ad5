import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Graft
import GraftServe
import GraftTestSupport
import Hummingbird
import HummingbirdTesting

/// A tiny backbone and four adapters saved in a temporary adapter directory:
/// `lora` (a LoRA task adapter with a two-label head), `bn` (a bottleneck task
/// adapter with a three-label head), `lang` (a bottleneck language adapter, no head)
/// and `tag` (a LoRA tagger: a token head of three labels).
struct ServeFixture {
    let backbone: Backbone
    let directory: String
    static let names = ["lora", "bn", "lang", "tag"]
    /// The engines made here, shut down by `remove()`.
    private let engines = Engines()
    private final class Engines: @unchecked Sendable { var made: [BatchingEngine] = [] }

    init() throws {
        backbone = try TinyBackbone.make()
        directory = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let adapters: [(String, AdapterConfiguration, HeadConfiguration?)] = [
            ("lora", AdapterConfiguration(LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value, .ffnOut])),
             .sequenceClassification(labels: ["dry", "wet"], pooling: .mean)),
            ("bn", AdapterConfiguration(BottleneckConfiguration.seqBn), .sequenceClassification(labels: ["a", "b", "c"], pooling: .first)),
            ("lang", AdapterConfiguration(BottleneckConfiguration.seqBnInv), nil),
            ("tag", AdapterConfiguration(LoRAConfiguration(rank: 2, alpha: 4, targets: [.query, .value])),
             .tokenClassification(labels: ["NOUN", "VERB", "X"])),
        ]
        for (seed, (name, configuration, head)) in adapters.enumerated() {
            let adapter = try configuration.makeAdapter(model: backbone.configuration, seed: UInt64(seed))
            randomize(adapter, seed: UInt64(10 + seed))
            let module = head?.makeHead(backbone: backbone, seed: UInt64(20 + seed))
            if let module { randomize(module, seed: UInt64(30 + seed)) }
            try AdapterCheckpoint(name: name, adapter: adapter, configuration: configuration, head: module, headConfiguration: head,
                                  backbone: backbone).save(to: path(name))
        }
    }

    func path(_ name: String) -> String { directory + "/\(name).h5" }

    /// An engine with the fixture's adapters loaded under their names.
    func engine(_ settings: BatchingEngine.Settings = BatchingEngine.Settings()) throws -> BatchingEngine {
        let engine = BatchingEngine(backbone: backbone, settings: settings)
        engines.made.append(engine)
        for name in Self.names { try engine.load(name: name, path: path(name)) }
        return engine
    }

    /// An engine (batches wait an hour for more requests) holding one request of
    /// `adapters` in its queue, and that request's task.
    func engineHoldingARequest(_ settings: BatchingEngine.Settings = BatchingEngine.Settings(), adapters: [String] = [],
                               kind: BatchingEngine.RequestKind = .embed) async throws
        -> (engine: BatchingEngine, waiting: Task<BatchingEngine.Output, any Error>) {
        var settings = settings
        settings.batchWait = .seconds(3600)
        let engine = try engine(settings)
        let waiting = Task { try await engine.submit(kind, adapters: adapters, texts: ["water"]) }
        while engine.queueDepth < 1 { try await Task.sleep(for: .milliseconds(5)) }
        return (engine, waiting)
    }

    /// A server over `engine` that may load adapters from the fixture's directory.
    func server(_ engine: BatchingEngine, apiKey: String? = nil, maxBodyBytes: Int = 1 << 20) throws -> GraftServer {
        var settings = GraftServer.Settings()
        settings.apiKey = apiKey
        settings.maxBodyBytes = maxBodyBytes
        return GraftServer(engine: engine, settings: settings, directories: try AdapterDirectories([directory]))
    }

    /// Shuts the engines down and removes the directory.
    func remove() {
        for engine in engines.made { engine.shutdown() }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Texts of different token lengths for the tiny tokenizer.
let sampleTexts = ["water mawu a", "ndi", "a a ndi water mawu", "mawu mawu", "water", "ndi a water"]

/// The largest difference between two lists of probabilities by label.
func largestDifference(_ a: [SequencePrediction], _ b: [SequencePrediction]) -> Float {
    zip(a, b).flatMap { x, y in x.probabilities.map { abs($0.value - (y.probabilities[$0.key] ?? .infinity)) } }.max() ?? .infinity
}

/// The largest difference between two lists of vectors.
func largestDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
    zip(a, b).flatMap { x, y in x.count == y.count ? zip(x, y).map { abs($0 - $1) } : [.infinity] }.max() ?? .infinity
}

extension TestClientProtocol {
    /// Sends a JSON body (given as text) and returns the response.
    func send(_ method: HTTPRequest.Method, _ uri: String, _ body: String? = nil, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
    }
}

extension TestResponse {
    /// The body decoded from JSON.
    func decoded<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(T.self, from: Data(body.readableBytesView)) }
    /// The `"error"` message of an error body.
    var error: String { (try? decoded([String: String].self))?["error"] ?? String(buffer: body) }
}

/// A raw TCP connection to the server on 127.0.0.1, to play a slow or vanishing client.
final class RawConnection: @unchecked Sendable {
    private let socket: Int32

    init(port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard socket >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)  // reads give up after 10 s
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// What the server sends until it closes the connection, and whether it closed it
    /// (false: 10 s passed first). Reads on a Dispatch thread, not the test's.
    func readUntilClosed() async -> (text: String, closed: Bool) {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [socket] in
                var received: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = recv(socket, &buffer, buffer.count, 0)
                    if count <= 0 { continuation.resume(returning: (String(decoding: received, as: UTF8.self), count == 0)); return }
                    received += buffer[..<count]
                }
            }
        }
    }

    func close() { Glibc.close(socket) }
}
