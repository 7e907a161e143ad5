import Foundation
import Graft
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The HTTP JSON API of `adapt serve` over a ``BatchingEngine``.
///
/// Endpoints: `POST /v1/classify`, `POST /v1/embed`, `GET`/`POST /v1/adapters`,
/// `DELETE /v1/adapters/{name}`, `GET /health`, `GET /metrics`, and `GET /openapi.json`,
/// the OpenAPI 3 document of them all (``openAPIDocument``; see `Docs/cli.md`).
/// Errors are `{"error": MESSAGE}` with a 4xx or 5xx status.
public struct GraftServer: Sendable {
    /// Where and how the server listens and what it accepts.
    public struct Settings: Sendable {
        /// The address to listen on.
        public var host = "127.0.0.1"
        /// The port to listen on; 0 picks a free one (named in the log).
        public var port = 8080
        /// Request bodies larger than this are refused with 413.
        public var maxBodyBytes = 1 << 20
        /// When set, every endpoint but `/health` needs `Authorization: Bearer KEY`.
        public var apiKey: String?
        /// How long a connection may go without the server receiving a complete request
        /// (head and body) or writing an answer: a slow client and an idle keep-alive
        /// connection are closed after it.
        public var clientTimeout = Duration.seconds(30)

        /// The defaults of `adapt serve`: 127.0.0.1:8080, 1 MiB bodies, no API key, 30 s for a client's request.
        public init() {}
    }

    /// The model behind the endpoints.
    public let engine: BatchingEngine
    /// Address, body limit and API key.
    public let settings: Settings
    /// Where `POST /v1/adapters` may read.
    public let directories: AdapterDirectories
    let logger: Logger

    /// A server over `engine` that loads adapters at run time only from `directories`.
    public init(engine: BatchingEngine, settings: Settings = Settings(), directories: AdapterDirectories,
                logger: Logger = Logger(label: "graft.serve")) {
        self.engine = engine
        self.settings = settings
        self.directories = directories
        self.logger = logger
    }

    /// The Hummingbird application: routes, API key check, JSON errors, metrics and request logs.
    public func application() -> some ApplicationProtocol {
        let router = Router()
        router.middlewares.add(LogRequestsMiddleware(.info))
        router.middlewares.add(MetricsMiddleware(metrics: engine.metrics))
        router.middlewares.add(JSONErrorMiddleware())
        if let apiKey = settings.apiKey { router.middlewares.add(APIKeyMiddleware(key: Array(apiKey.utf8))) }
        router.middlewares.add(MethodNotAllowedMiddleware())
        router.get("/health") { _, _ in
            try json(Health(status: "ok", adapters: engine.adapters.count))
        }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: engine.metrics.text())))
        }
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: openAPIDocument)))
        }
        router.get("/v1/adapters") { _, _ in try json(AdapterList(adapters: engine.adapters)) }
        router.post("/v1/adapters") { request, _ in
            let body = try await decode(LoadRequest.self, from: request)
            let info = try engine.load(name: body.name, path: try directories.resolve(body.path))
            return try json(info, status: .created)
        }
        router.delete("/v1/adapters/:name") { _, context in
            try engine.remove(name: try context.parameters.require("name"))
            return Response(status: .noContent)
        }
        router.post("/v1/classify") { request, _ in
            let body = try await decode(ModelRequest.self, from: request)
            switch try await engine.submit(.classify(topK: body.topK), adapters: try body.stack(), texts: body.texts) {
            case .predictions(let results): return try json(ClassifyResponse(results: results))
            case .wordLabels(let results): return try json(ClassifyResponse(results: results))
            case .embeddings: preconditionFailure("classify answered embeddings")
            }
        }
        router.post("/v1/embed") { request, _ in
            let body = try await decode(ModelRequest.self, from: request)
            guard case .embeddings(let embeddings) = try await engine.submit(.embed, adapters: try body.stack(),
                                                                              texts: body.texts) else { preconditionFailure("embed answered predictions") }
            return try json(EmbedResponse(embeddings: embeddings))
        }
        var configuration = ApplicationConfiguration(address: .hostname(settings.host, port: settings.port), serverName: "graft")
        configuration.reuseAddress = true
        let idle = TimeAmount.nanoseconds(Int64(clamping: settings.clientTimeout.nanoseconds))
        return Application(router: router, server: .http1(configuration: .init(idleTimeout: idle)), configuration: configuration, logger: logger)
    }

    /// Serves until SIGTERM or SIGINT, then lets the requests in flight finish
    /// and stops the engine.
    public func run() async throws {
        logger.info("serving", metadata: ["host": "\(settings.host)", "port": "\(settings.port)",
                                          "adapters": "\(engine.adapters.map(\.name).joined(separator: ","))"])
        defer { engine.shutdown() }
        try await application().runService()
    }

    /// The body of `request` (at most `maxBodyBytes`) decoded from JSON.
    private func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let bytes: ByteBuffer
        do { bytes = try await request.body.collect(upTo: settings.maxBodyBytes) } catch let error as any HTTPResponseError where error.status.code == 413 {
            throw ServeError(status: 413, "the request body is larger than \(settings.maxBodyBytes) bytes")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(bytes.readableBytesView)) } catch let error as DecodingError {
            throw ServeError.badRequest("invalid request body: \(describe(error))")
        }
    }
}

/// The OpenAPI 3 document of the API (`Sources/GraftServe/Resources/openapi.json`), served at `/openapi.json`.
public let openAPIDocument: [UInt8] = PackageResources.openapi_json

/// The names of swift-log's levels, lowest first (`--log-level`).
public let logLevels = Logger.Level.allCases.map(\.rawValue)

/// A logger that writes structured lines (`key=value` metadata) to standard error
/// at `level` and above (one of ``logLevels``; info if unknown); the first call sets
/// the process's log handler.
public func standardErrorLogger(level: String) -> Logger {
    LoggingSystem.bootstrap(StreamLogHandler.standardError)
    var logger = Logger(label: "graft.serve")
    logger.logLevel = Logger.Level(rawValue: level) ?? .info
    return logger
}

/// A JSON response.
private func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return Response(status: status, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}

/// A decoding error in words, with the path of the offending field.
private func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "the body" : "\"" + keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "\""
    }
    return switch error {
    case let .keyNotFound(key, context): "\(path(context.codingPath + [key])) is missing"
    case let .typeMismatch(type, context): "\(path(context.codingPath)) must be of type \(type)"
    case let .valueNotFound(_, context): "\(path(context.codingPath)) must not be null: give a value or leave the field out"
    case let .dataCorrupted(context):
        context.codingPath.isEmpty ? "not JSON (or not UTF-8)" : "\(path(context.codingPath)): \(context.debugDescription)"
    @unknown default: "\(error)"
    }
}

// MARK: Request and response bodies

/// `{"adapter": NAME}` or `{"adapters": [NAME, ...]}` (a stack, lowest first), and the texts.
struct ModelRequest: Decodable {
    let adapter: String?
    let adapters: [String]?
    let texts: [String]
    let topK: Int?

    enum CodingKeys: String, CodingKey { case adapter, adapters, texts, topK = "top_k" }

    /// An optional field may be left out, not given as null (which would hide a client's mistake).
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func optional<T: Decodable>(_ type: T.Type, _ key: CodingKeys) throws -> T? {
            container.contains(key) ? try container.decode(type, forKey: key) : nil
        }
        adapter = try optional(String.self, .adapter)
        adapters = try optional([String].self, .adapters)
        texts = try container.decode([String].self, forKey: .texts)
        topK = try optional(Int.self, .topK)
    }

    /// The adapters, lowest first; none for the plain backbone.
    func stack() throws -> [String] {
        if let topK, topK < 1 { throw ServeError.badRequest("\"top_k\" must be positive, got \(topK)") }
        switch (adapter, adapters) {
        case (let name?, nil): return [name]
        case (nil, let names?):
            guard !names.isEmpty else { throw ServeError.badRequest("\"adapters\" is empty: give at least one adapter, or leave it out") }
            return names
        case (nil, nil): return []
        case (_?, _?): throw ServeError.badRequest("give \"adapter\" or \"adapters\", not both")
        }
    }
}

struct LoadRequest: Decodable {
    let name: String
    /// A path inside one of the adapter directories (relative to one, or absolute).
    let path: String
}

/// `results` are `SequencePrediction`s, or `TokenPrediction`s for a token head.
struct ClassifyResponse<Result: Codable>: Codable { let results: [Result] }
struct EmbedResponse: Codable { let embeddings: [[Float]] }
struct AdapterList: Codable { let adapters: [BatchingEngine.AdapterInfo] }
struct Health: Codable { let status: String; let adapters: Int }
struct ErrorBody: Codable { let error: String }

// MARK: Middleware

/// Turns every error into `{"error": MESSAGE}` with its status (and `Retry-After` for 429 and 503).
struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do { return try await next(request, context) } catch let error as ServeError {
            var response = try json(ErrorBody(error: error.message), status: HTTPResponse.Status(code: error.status))
            if let seconds = error.retryAfter { response.headers[.retryAfter] = String(seconds) }
            return response
        } catch let error as HTTPError {
            return try json(ErrorBody(error: error.body ?? error.status.reasonPhrase), status: error.status)
        } catch let error as any HTTPResponseError {
            return try json(ErrorBody(error: "\(error)"), status: error.status)
        } catch let error as HTTPParserError where error == .invalidEOFState {
            // The client left (or was cut off by the client timeout) before its request was complete.
            context.logger.debug("incomplete request", metadata: ["error": "\(error)"])
            return try json(ErrorBody(error: "the request ended before its body was complete"), status: .badRequest)
        } catch is CancellationError {
            return try json(ErrorBody(error: "the request was cancelled"), status: .serviceUnavailable)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return try json(ErrorBody(error: "internal error: \(error)"), status: .internalServerError)
        }
    }
}

/// Requires `Authorization: Bearer KEY` on every endpoint but `/health`, comparing in constant time.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let key: [UInt8]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path != "/health" else { return try await next(request, context) }
        let given = request.headers[.authorization].map { Array($0.utf8) } ?? []
        let prefix = Array("Bearer ".utf8)
        guard given.starts(with: prefix), constantTimeEqual(Array(given.dropFirst(prefix.count)), key) else {
            var response = try json(ErrorBody(error: "missing or wrong API key: send Authorization: Bearer KEY"), status: .unauthorized)
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        return try await next(request, context)
    }
}

/// The OpenAPI document's path templates (`/v1/adapters/{name}`), split at `/`, and their methods.
private let documentedOperations: [(template: [Substring], methods: [String])] = {
    let document = try? JSONSerialization.jsonObject(with: Data(openAPIDocument)) as? [String: Any]
    let paths = document?["paths"] as? [String: [String: Any]] ?? [:]
    return paths.map { path, operations in (path.split(separator: "/"), operations.keys.map { $0.uppercased() }.sorted()) }
}()

/// Answers 405 (with `Allow`) for a path of the API asked with a method that the
/// OpenAPI document does not list for it; other requests go on to the router.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let components = request.uri.path.split(separator: "/")
        let matching = documentedOperations.first { template, _ in
            template.count == components.count && zip(template, components).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }
        guard let allowed = matching?.methods, !allowed.contains(request.method.rawValue) else { return try await next(request, context) }
        var response = try json(ErrorBody(error: "\(request.method.rawValue) is not allowed on \(request.uri.path): use \(allowed.joined(separator: " or "))"),
                                status: .methodNotAllowed)
        response.headers[.allow] = allowed.joined(separator: ", ")
        return response
    }
}

/// Whether `a == b`, in a time that depends only on their lengths.
func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0
}

/// Counts requests by endpoint and status and records their latency.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServeMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.request(endpoint: context.endpointPath ?? "unmatched", status: response.status.code, seconds: ContinuousClock.now - start)
        return response
    }
}
