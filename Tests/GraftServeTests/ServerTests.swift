import Foundation
import Graft
import GraftTestSupport
import Hummingbird
import HummingbirdTesting
import Testing
@testable import GraftServe

/// The HTTP API, through Hummingbird's router test client (no port).
@Suite struct ServerEndpoints {
    struct Classified: Decodable { let results: [SequencePrediction] }
    struct Tagged: Decodable { let results: [TokenPrediction] }
    struct Embedded: Decodable { let embeddings: [[Float]] }
    struct Listed: Decodable { let adapters: [BatchingEngine.AdapterInfo] }

    @Test func classifyAndEmbedAnswerInTextOrder() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let texts = ["water mawu a", "ndi", "a a ndi water mawu"]
        guard case .predictions(let expected) = try await engine.submit(.classify(topK: nil), adapters: ["lang", "bn"], texts: texts),
              case .embeddings(let vectors) = try await engine.submit(.embed, adapters: ["lora"], texts: texts),
              case .wordLabels(let expectedTags) = try await engine.submit(.classify(topK: nil), adapters: ["tag"], texts: Array(texts.prefix(2))) else {
            Issue.record("wrong kind of output"); return
        }
        try await fixture.server(engine).application().test(.router) { client in
            let classified = try await client.send(.post, "/v1/classify", #"{"adapters": ["lang", "bn"], "texts": ["water mawu a", "ndi", "a a ndi water mawu"]}"#)
            #expect(classified.status == .ok)
            #expect(classified.headers[.contentType] == "application/json")
            let results = try classified.decoded(Classified.self).results
            #expect(results.map(\.label) == expected.map(\.label) && largestDifference(results, expected) <= 1e-6)
            #expect(results.allSatisfy { Set($0.probabilities.keys) == ["a", "b", "c"] })

            let top = try await client.send(.post, "/v1/classify", #"{"adapter": "lora", "texts": ["ndi"], "top_k": 1}"#)
            #expect(try top.decoded(Classified.self).results.map { $0.probabilities.count } == [1])

            let tagged = try await client.send(.post, "/v1/classify", #"{"adapter": "tag", "texts": ["water mawu a", "ndi"]}"#)
            #expect(try tagged.decoded(Tagged.self).results == expectedTags)
            let taggedTopK = try await client.send(.post, "/v1/classify", #"{"adapter": "tag", "texts": ["ndi"], "top_k": 1}"#)
            #expect(taggedTopK.status == .badRequest && taggedTopK.error.contains("\"top_k\" applies to sequence heads"))

            let embedded = try await client.send(.post, "/v1/embed", #"{"adapter": "lora", "texts": ["water mawu a", "ndi", "a a ndi water mawu"]}"#)
            let embeddings = try embedded.decoded(Embedded.self).embeddings
            #expect(embeddings.count == 3 && largestDifference(embeddings, vectors) <= 1e-6)
            #expect(embeddings.allSatisfy { abs($0.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4 })
        }
    }

    @Test(arguments: [
        (#"{"adapter": "nope", "texts": ["a"]}"#, 404, "no adapter named \"nope\""),
        (#"{"adapter": "lora", "texts": []}"#, 400, "\"texts\" is empty"),
        (#"{"adapters": null, "texts": ["a"]}"#, 400, "\"adapters\" must not be null: give a value or leave the field out"),
        (#"{"adapter": "lora", "texts": "a"}"#, 400, "\"texts\" must be of type"),
        (#"{"adapter": "lora", "texts": [1, 2]}"#, 400, "\"texts.0\" must be of type"),
        (#"{"adapter": "lora"}"#, 400, "\"texts\" is missing"),
        (#"{"adapter": "lora", "adapters": ["bn"], "texts": ["a"]}"#, 400, "not both"),
        (#"{"adapters": [], "texts": ["a"]}"#, 400, "\"adapters\" is empty"),
        (#"{"adapter": "lora", "texts": ["a"], "top_k": 0}"#, 400, "\"top_k\" must be positive"),
        (#"{"adapter": "lang", "texts": ["a"]}"#, 400, "adapter \"lang\" has no classification head"),
        (#"{"texts": ["a"]}"#, 400, "classification needs an adapter"),
        (#"{"adapter": "lora", "texts": ["a""#, 400, "not JSON"),
        ("\u{FF}", 400, "not JSON (or not UTF-8)"),
    ])
    func badInputGetsAClearError(body: String, status: Int, message: String) async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        try await fixture.server(try fixture.engine()).application().test(.router) { client in
            let response = try await client.send(.post, "/v1/classify", body)
            #expect(response.status.code == status)
            #expect(response.error.contains(message), "\(response.error)")
            // The server keeps serving.
            #expect(try await client.send(.get, "/health").status == .ok)
        }
    }

    @Test func oversizedBodiesAndTooManyTextsAreRefused() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.maxTexts = 2
        try await fixture.server(try fixture.engine(settings), maxBodyBytes: 100).application().test(.router) { client in
            let large = try await client.send(.post, "/v1/embed", #"{"texts": [""# + String(repeating: "a", count: 200) + #""]}"#)
            #expect(large.status.code == 413 && large.error.contains("larger than 100 bytes"))
            let many = try await client.send(.post, "/v1/embed", #"{"texts": ["a", "b", "c"]}"#)
            #expect(many.status.code == 400 && many.error.contains("at most 2"))
        }
    }

    @Test func adaptersAreListedLoadedFromTheDirectoriesAndRemoved() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let outside = TinyBackbone.temporaryPath("")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        try FileManager.default.copyItem(atPath: fixture.path("lora"), toPath: outside + "/secret.h5")
        try FileManager.default.createSymbolicLink(atPath: fixture.directory + "/escape.h5", withDestinationPath: outside + "/secret.h5")
        try await fixture.server(try fixture.engine()).application().test(.router) { client in
            let listed = try await client.send(.get, "/v1/adapters").decoded(Listed.self).adapters
            #expect(listed.map(\.name) == ["bn", "lang", "lora", "tag"])
            #expect(listed.first { $0.name == "lang" }?.head == nil)

            let loaded = try await client.send(.post, "/v1/adapters", #"{"name": "second", "path": "lora.h5"}"#)
            #expect(loaded.status == .created)
            #expect(try loaded.decoded(BatchingEngine.AdapterInfo.self).labels == ["dry", "wet"])
            #expect(try await client.send(.post, "/v1/classify", #"{"adapter": "second", "texts": ["ndi"]}"#).status == .ok)
            let again = try await client.send(.post, "/v1/adapters", #"{"name": "second", "path": "bn.h5"}"#)
            #expect(again.status == .conflict)

            for (path, status) in [("../x.h5", 400), ("sub/../../x.h5", 400), (outside + "/secret.h5", 403), ("escape.h5", 403),
                                   ("missing.h5", 404), ("/etc/passwd", 403)] {
                let refused = try await client.send(.post, "/v1/adapters", #"{"name": "x", "path": "\#(path)"}"#)
                #expect(refused.status.code == status, "\(path): \(refused.error)")
            }

            #expect(try await client.send(.delete, "/v1/adapters/second").status == .noContent)
            #expect(try await client.send(.delete, "/v1/adapters/second").status == .notFound)
            let gone = try await client.send(.post, "/v1/classify", #"{"adapter": "second", "texts": ["ndi"]}"#)
            #expect(gone.status == .notFound && gone.error.contains("no adapter named \"second\""))
        }
    }

    @Test func loadingAtRunTimeIsOffWithoutDirectories() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let server = GraftServer(engine: try fixture.engine(), directories: try AdapterDirectories([]))
        let path = fixture.path("lora")
        try await server.application().test(.router) { client in
            let refused = try await client.send(.post, "/v1/adapters", #"{"name": "x", "path": "\#(path)"}"#)
            #expect(refused.status == .forbidden && refused.error.contains("--adapter-directory"))
        }
    }

    @Test func anAPIKeyGuardsEverythingButHealth() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        try await fixture.server(try fixture.engine(), apiKey: "s3cret").application().test(.router) { client in
            #expect(try await client.send(.get, "/health").status == .ok)
            let missing = try await client.send(.get, "/v1/adapters")
            #expect(missing.status == .unauthorized && missing.headers[.wwwAuthenticate] == "Bearer")
            #expect(try await client.send(.get, "/v1/adapters", headers: [.authorization: "Bearer s3cre"]).status == .unauthorized)
            #expect(try await client.send(.get, "/v1/adapters", headers: [.authorization: "Bearer s3cret!"]).status == .unauthorized)
            #expect(try await client.send(.get, "/metrics", headers: [.authorization: "s3cret"]).status == .unauthorized)
            #expect(try await client.send(.get, "/v1/adapters", headers: [.authorization: "Bearer s3cret"]).status == .ok)
        }
        #expect(constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abd".utf8)) && !constantTimeEqual(Array("ab".utf8), Array("abc".utf8)))
    }

    @Test func aFullQueueAnswers429WithRetryAfter() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.maxQueuedRequests = 1
        let (engine, waiting) = try await fixture.engineHoldingARequest(settings)
        defer { waiting.cancel() }
        try await fixture.server(engine).application().test(.router) { client in
            let refused = try await client.send(.post, "/v1/embed", #"{"texts": ["a"]}"#)
            #expect(refused.status == .tooManyRequests && refused.headers[.retryAfter] == "1")
            let metrics = String(buffer: try await client.send(.get, "/metrics").body)
            #expect(metrics.contains("graft_serve_queue_depth 1"))
        }
    }

    @Test func metricsCountRequestsBatchesAndTokens() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        try await fixture.server(try fixture.engine()).application().test(.router) { client in
            #expect(try await client.send(.post, "/v1/classify", #"{"adapter": "lora", "texts": ["ndi", "water a"]}"#).status == .ok)
            #expect(try await client.send(.post, "/v1/classify", #"{"adapter": "nope", "texts": ["ndi"]}"#).status == .notFound)
            let response = try await client.send(.get, "/metrics")
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let metrics = String(buffer: response.body)
            for line in [#"graft_serve_requests_total{endpoint="/v1/classify",status="200"} 1"#,
                         #"graft_serve_requests_total{endpoint="/v1/classify",status="404"} 1"#,
                         #"graft_serve_request_duration_seconds_count{endpoint="/v1/classify"} 2"#,
                         "graft_serve_batch_texts_sum 2", "graft_serve_batch_setups_count 1", "graft_serve_tokens_total 7",
                         "graft_serve_queue_depth 0", "graft_serve_tokens_per_second "] {
                #expect(metrics.contains(line), "\(line) in\n\(metrics)")
            }
        }
    }

    /// The OpenAPI document is served and lists exactly the operations the server answers, each
    /// answering one of its documented statuses (schemathesis checks the bodies: Benchmarks/serve/schemathesis.sh).
    @Test func theOpenAPIDocumentDescribesEveryOperation() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let document = try #require(try JSONSerialization.jsonObject(with: Data(openAPIDocument)) as? [String: Any])
        #expect((document["openapi"] as? String)?.hasPrefix("3.") == true)
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var documented: [String: Set<Int>] = [:]
        for (path, operations) in paths {
            for (method, operation) in operations {
                let responses = try #require((operation as? [String: Any])?["responses"] as? [String: Any])
                documented["\(method.uppercased()) \(path)"] = Set(responses.keys.compactMap(Int.init))
            }
        }
        // One request per operation (the removal last: it removes what the load added).
        let requests: [(key: String, method: HTTPRequest.Method, uri: String, body: String?)] = [
            ("GET /health", .get, "/health", nil), ("GET /metrics", .get, "/metrics", nil),
            ("GET /openapi.json", .get, "/openapi.json", nil), ("GET /v1/adapters", .get, "/v1/adapters", nil),
            ("POST /v1/adapters", .post, "/v1/adapters", #"{"name": "again", "path": "bn.h5"}"#),
            ("POST /v1/classify", .post, "/v1/classify", #"{"adapters": ["lang", "tag"], "texts": ["water mawu a"]}"#),
            ("POST /v1/embed", .post, "/v1/embed", #"{"texts": ["water mawu a"]}"#),
            ("DELETE /v1/adapters/{name}", .delete, "/v1/adapters/again", nil),
        ]
        #expect(Set(documented.keys) == Set(requests.map(\.key)))
        let statuses = documented
        try await fixture.server(try fixture.engine()).application().test(.router) { client in
            for request in requests {
                let response = try await client.send(request.method, request.uri, request.body)
                #expect((200..<300).contains(response.status.code) && statuses[request.key]?.contains(response.status.code) == true,
                        "\(request.key): \(response.status) \(response.error)")
            }
            let served = try await client.send(.get, "/openapi.json")
            #expect(Array(served.body.readableBytesView) == openAPIDocument)
            for (method, uri, allow) in [(HTTPRequest.Method.trace, "/health", "GET"), (.put, "/v1/adapters/lora", "DELETE"),
                                         (.patch, "/v1/adapters", "GET, POST")] {
                let refused = try await client.send(method, uri)
                #expect(refused.status == .methodNotAllowed && refused.headers[.allow] == allow, "\(method) \(uri): \(refused.status)")
            }
            #expect(try await client.send(.get, "/v2/nothing").status == .notFound)
        }
    }

    /// A client that never finishes its request head, one that never finishes its body and one that
    /// leaves before its answer: the slow ones are disconnected after the client timeout, and the
    /// server answers everyone else meanwhile and afterwards (over a real port).
    @Test func slowAndVanishingClientsDoNotStopTheServer() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        var settings = GraftServer.Settings()
        settings.port = 0
        settings.clientTimeout = .milliseconds(500)
        let server = GraftServer(engine: engine, settings: settings, directories: try AdapterDirectories([]))
        try await server.application().test(.live) { client in
            let port = try #require(client.port)
            let body = #"{"adapter": "lora", "texts": ["water mawu a"]}"#
            let head = "POST /v1/classify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            let slowHead = try RawConnection(port: port)
            slowHead.send(head)
            let slowBody = try RawConnection(port: port)
            slowBody.send(head + "Content-Length: \(body.utf8.count)\r\n\r\n" + body.prefix(10))
            let leaving = try RawConnection(port: port)
            leaving.send(head + "Content-Length: \(body.utf8.count)\r\n\r\n" + body)
            leaving.close()
            // Everyone else: a complete request on a connection of its own (a keep-alive connection idle
            // between requests for longer than the short timeout, as on a loaded machine, would be closed too).
            func classify() async throws -> String {
                let connection = try RawConnection(port: port)
                defer { connection.close() }
                connection.send(head + "Connection: close\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
                return await connection.readUntilClosed().text
            }
            for _ in 0..<5 {
                let answer = try await classify()
                #expect(answer.hasPrefix("HTTP/1.1 200 OK"), "\(answer)")
            }
            for (name, connection) in [("head", slowHead), ("body", slowBody)] {
                let (answer, closed) = await connection.readUntilClosed()
                #expect(closed && answer.isEmpty, "a request without its complete \(name) stayed open or was answered: \(answer)")
            }
            for connection in [slowHead, slowBody] { connection.close() }
            let afterwards = try await classify()
            #expect(afterwards.hasPrefix("HTTP/1.1 200 OK"), "\(afterwards)")
            #expect(engine.queueDepth == 0)
        }
    }
}
