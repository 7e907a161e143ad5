import ArgumentParser
import Foundation
import Graft
import GraftServe

/// `adapt serve`: an HTTP JSON server with many adapters over one frozen backbone.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve classification and embeddings over HTTP: many adapters on one frozen backbone, in mixed-adapter batches.",
        discussion: """
            Endpoints: POST /v1/classify and /v1/embed ({"adapter": NAME} or {"adapters": [NAME, ...]} for a stack, \
            and "texts"), GET and POST /v1/adapters, DELETE /v1/adapters/NAME, GET /health, GET /metrics \
            (Prometheus), GET /openapi.json (the OpenAPI document of them all). Requests that wait together run as one forward pass, each under its own adapters. \
            SIGTERM or SIGINT stops the server after the requests in flight. See Docs/cli.md.
            """)

    @Option(help: "The backbone file (made by `adapt import`).") var backbone: String
    @Option(name: .customLong("adapter"), help: "An adapter to load at start, NAME=PATH (a Graft .h5 or a peft directory); repeatable.")
    var adapters: [String] = []
    @Option(name: .customLong("adapter-directory"),
            help: "A directory POST /v1/adapters may load from; repeatable (without one, loading at run time is off).")
    var adapterDirectories: [String] = []
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on (0: a free port, named in the log).") var port = 8080
    @Option(help: "A file holding the API key that clients send as `Authorization: Bearer KEY` (first line; /health stays open).")
    var apiKeyFile: String?
    @Option(help: "Tokens per forward pass (texts packed back to back, no padding); 1 runs each request alone.") var maxBatchTokens = 4096
    @Option(help: "Milliseconds a request waits for others to join its batch; 0: no waiting.") var batchWaitMs = 2
    @Option(help: "Requests that may wait for the model; more are refused with 429.") var maxQueue = 256
    @Option(help: "Texts per request.") var maxTexts = 64
    @Option(help: "Tokens per text; longer texts are cut (as `adapt predict --max-length`).") var maxLength = 128
    @Option(help: "Bytes per request body.") var maxBodyBytes = 1 << 20
    @Option(help: "Seconds a request may take, waiting included (504 after it).") var timeout = 30
    @Option(help: """
        Seconds a connection may go without a complete request arriving or an answer leaving: slow clients and idle \
        keep-alive connections are closed after it.
        """) var clientTimeout = 30
    @Option(help: "Log level: trace, debug (one line per batch), info (one line per request), notice, warning, error or critical.")
    var logLevel = "info"
    @OptionGroup var threads: ThreadsOption

    func validate() throws {
        try checkPositive(["--max-batch-tokens": maxBatchTokens, "--max-queue": maxQueue, "--max-texts": maxTexts,
                           "--max-body-bytes": maxBodyBytes, "--timeout": timeout,
                           "--client-timeout": clientTimeout])
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        guard batchWaitMs >= 0 else { throw ValidationError("--batch-wait-ms must not be negative, got \(batchWaitMs)") }
        guard maxLength >= 4 else { throw ValidationError("--max-length must be at least 4, got \(maxLength)") }
        guard logLevels.contains(logLevel) else {
            throw ValidationError("--log-level must be one of \(logLevels.joined(separator: ", ")), got \(logLevel)")
        }
        _ = try startupAdapters()
    }

    /// `--adapter NAME=PATH` values as (name, path).
    func startupAdapters() throws -> [(name: String, path: String)] {
        try adapters.map { value in
            guard let split = value.firstIndex(of: "="), split != value.startIndex, value.index(after: split) != value.endIndex else {
                throw ValidationError("--adapter takes NAME=PATH, got \(value)")
            }
            return (String(value[..<split]), String(value[value.index(after: split)...]))
        }
    }

    func run() throws {
        try threads.apply()
        let logger = standardErrorLogger(level: logLevel)
        var engineSettings = BatchingEngine.Settings()
        engineSettings.maxBatchTokens = maxBatchTokens
        engineSettings.batchWait = .milliseconds(batchWaitMs)
        engineSettings.maxQueuedRequests = maxQueue
        engineSettings.maxTexts = maxTexts
        engineSettings.maxLength = maxLength
        engineSettings.timeout = .seconds(timeout)
        var serverSettings = GraftServer.Settings()
        serverSettings.host = host
        serverSettings.port = port
        serverSettings.maxBodyBytes = maxBodyBytes
        serverSettings.clientTimeout = .seconds(clientTimeout)
        if let apiKeyFile {
            guard let contents = try? String(contentsOfFile: apiKeyFile, encoding: .utf8),
                  let key = contents.split(separator: "\n").first.map({ $0.trimmingCharacters(in: .whitespaces) }), !key.isEmpty else {
                throw CommandError("cannot read an API key from \(apiKeyFile) (expected the key on its first line)")
            }
            serverSettings.apiKey = key
        }
        let server: GraftServer
        do {
            let directories = try AdapterDirectories(adapterDirectories)
            let engine = BatchingEngine(backbone: try Backbone.load(from: backbone), settings: engineSettings, logger: logger)
            for (name, path) in try startupAdapters() { try engine.load(name: name, path: path) }
            server = GraftServer(engine: engine, settings: serverSettings, directories: directories, logger: logger)
        } catch let error as ServeError { throw CommandError(error.message) }
        try runBlocking { try await server.run() }
    }
}

/// Runs `body` to completion from synchronous code (`adapt`'s commands are synchronous).
private func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    final class Outcome: @unchecked Sendable { var error: (any Error)? }
    let outcome = Outcome(), done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { outcome.error = error }
        done.signal()
    }
    done.wait()
    if let error = outcome.error { throw error }
}
