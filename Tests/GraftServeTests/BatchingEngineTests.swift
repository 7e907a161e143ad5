import Foundation
import Graft
import GraftTestSupport
import Testing
@testable import GraftServe

/// The engine without HTTP: mixed-adapter batches answer as each request alone,
/// and the queue's limits, timeout, cancellation and shutdown.
@Suite struct BatchingEngines {
    /// The requests of the mixed batch: each task and adapter setup on a slice of the sample texts.
    typealias Request = (kind: BatchingEngine.RequestKind, adapters: [String], texts: ArraySlice<String>)
    static let requests: [Request] = [
        (.classify(topK: nil), ["lora"], sampleTexts[0..<2]),
        (.classify(topK: nil), ["bn"], sampleTexts[1..<5]),
        (.classify(topK: nil), ["lang", "bn"], sampleTexts[2..<6]),
        (.embed, ["lang"], sampleTexts[0..<3]),
        (.embed, [], sampleTexts[3..<6]),
        (.classify(topK: nil), ["lora"], sampleTexts[4..<6]),
        (.classify(topK: nil), ["tag"], sampleTexts[0..<3]),
        (.classify(topK: nil), ["lang", "tag"], sampleTexts[3..<6]),
    ]

    /// Submits all `requests` at once and returns their outputs in order.
    func submitTogether(_ engine: BatchingEngine, _ requests: [Request] = requests) async throws -> [BatchingEngine.Output] {
        try await withThrowingTaskGroup(of: (Int, BatchingEngine.Output).self) { group in
            for (index, request) in requests.enumerated() {
                group.addTask { (index, try await engine.submit(request.kind, adapters: request.adapters, texts: Array(request.texts))) }
            }
            var outputs = [BatchingEngine.Output?](repeating: nil, count: requests.count)
            for try await (index, output) in group { outputs[index] = output }
            return outputs.map { $0! }
        }
    }

    /// How many forward passes the engine has run (the batch-size histogram's count).
    func forwardPasses(_ engine: BatchingEngine) throws -> Int {
        let line = try #require(engine.metrics.text().split(separator: "\n").first { $0.hasPrefix("graft_serve_batch_texts_count") })
        return try #require(Int(line.split(separator: " ").last!))
    }

    @Test func mixedBatchesAnswerAsEachRequestAlone() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var batching = BatchingEngine.Settings()
        batching.batchWait = .milliseconds(300)
        var alone = BatchingEngine.Settings()
        alone.maxBatchTokens = 1
        alone.batchWait = .zero
        let (mixedEngine, aloneEngine) = (try fixture.engine(batching), try fixture.engine(alone))
        let mixed = try await submitTogether(mixedEngine)
        #expect(try forwardPasses(mixedEngine) < Self.requests.count, "the requests were not batched together")
        var expected: [BatchingEngine.Output] = []
        for request in Self.requests {
            expected.append(try await aloneEngine.submit(request.kind, adapters: request.adapters, texts: Array(request.texts)))
        }
        #expect(try forwardPasses(aloneEngine) >= Self.requests.count)
        for (index, (got, want)) in zip(mixed, expected).enumerated() {
            switch (got, want) {
            case let (.predictions(got), .predictions(want)):
                #expect(got.count == Self.requests[index].texts.count && got.map(\.label) == want.map(\.label))
                #expect(largestDifference(got, want) <= 1e-5, "request \(index)")
            case let (.wordLabels(got), .wordLabels(want)):
                #expect(got.count == Self.requests[index].texts.count && got == want, "request \(index)")
            case let (.embeddings(got), .embeddings(want)):
                #expect(got.count == Self.requests[index].texts.count)
                #expect(largestDifference(got, want) <= 1e-5, "request \(index)")
            default: Issue.record("request \(index): \(got) against \(want)")
            }
        }
    }

    /// A batch runs in one packed pass, whatever its texts' lengths: nothing is padded.
    @Test func textsOfVeryDifferentLengthsShareOnePackedPass() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.batchWait = .milliseconds(300)
        let engine = try fixture.engine(settings)
        let long = String(repeating: "water mawu ", count: 8)
        let requests: [Request] = [(.embed, ["lang"], ["ndi"]), (.embed, [], ["water"]), (.classify(topK: nil), ["lora"], [long])]
        _ = try await submitTogether(engine, requests)
        #expect(try forwardPasses(engine) == 1)
        let tokens = requests.map { fixture.backbone.tokenizer.encode($0.texts.first!, maxLength: 128).count }.reduce(0, +)
        for line in ["graft_serve_batch_setups_sum 3", "graft_serve_batch_texts_sum 3", "graft_serve_tokens_total \(tokens)"] {
            #expect(engine.metrics.text().contains(line), "\(line)")
        }
    }

    /// One request's texts of very different lengths run in one packed pass, and come back in their order,
    /// each as it is alone.
    @Test func aRequestsTextsOfVeryDifferentLengthsRunInOnePass() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let texts = ["ndi", String(repeating: "water mawu ", count: 8), "water", String(repeating: "mawu a ", count: 9)]
        for kind in [BatchingEngine.RequestKind.embed, .classify(topK: nil)] {
            let adapters = kind == .embed ? ["lang"] : ["lang", "tag"]
            let together = try await engine.submit(kind, adapters: adapters, texts: texts)
            var alone: [BatchingEngine.Output] = []
            for text in texts { alone.append(try await engine.submit(kind, adapters: adapters, texts: [text])) }
            switch together {
            case .embeddings(let vectors):
                let each = alone.compactMap { if case .embeddings(let v) = $0 { v[0] } else { nil } }
                #expect(vectors.count == 4 && largestDifference(vectors, each) <= 1e-5)
            case .wordLabels(let labels):
                #expect(labels == alone.compactMap { if case .wordLabels(let l) = $0 { l[0] } else { nil } })
            case .predictions: Issue.record("a tagger answered class probabilities")
            }
        }
        #expect(try forwardPasses(engine) == 1 + 1 + 8, "each request in one pass, each text alone in one")
    }

    @Test func answersAsAdaptPredictAndEmbedDo() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        let texts = Array(sampleTexts)
        // adapt predict --adapter bn --stack-on lang: AdaptedModel and Classifier.probabilities.
        let loaded = try AdaptedModel.load(backbone: try saveBackbone(fixture), adapter: fixture.path("bn"), stackOn: fixture.path("lang"))
        let classifier = try #require(loaded.classifier)
        let ids = texts.map { loaded.backbone.tokenizer.encode($0, maxLength: 128) }
        let predicted = classifier.probabilities(ids, batchSize: 4).map { SequencePrediction(probabilities: $0[0], labels: classifier.labels, topK: nil) }
        guard case .predictions(let served) = try await engine.submit(.classify(topK: nil), adapters: ["lang", "bn"], texts: texts) else {
            Issue.record("classify answered embeddings"); return
        }
        #expect(served.map(\.label) == predicted.map(\.label))
        #expect(largestDifference(served, predicted) <= 1e-5)
        guard case .predictions(let top) = try await engine.submit(.classify(topK: 1), adapters: ["lang", "bn"], texts: texts) else { return }
        #expect(top.allSatisfy { $0.probabilities.count == 1 && $0.probabilities[$0.label] != nil })

        // adapt predict --adapter tag --stack-on lang --max-length 6: a label per word, null past the limit.
        var short = BatchingEngine.Settings()
        short.maxLength = 6
        let shortEngine = try fixture.engine(short)
        let tagger = try #require(try AdaptedModel.load(backbone: try saveBackbone(fixture), adapter: fixture.path("tag"),
                                                        stackOn: fixture.path("lang")).classifier)
        let frames = texts.map { TokenPrediction.frame($0, tokenizer: tagger.backbone.tokenizer, maxLength: 6) }
        let tagged = zip(frames, tagger.probabilities(frames.map(\.example.ids), batchSize: 4)).map { frame, rows in
            TokenPrediction(words: frame.words, example: frame.example, labels: tagger.labels) { position in
                rows[position].indices.max { rows[position][$0] < rows[position][$1] }!
            }
        }
        #expect(tagged.contains { $0.labels.contains(nil) } && tagged.contains { !$0.labels.contains(nil) })
        guard case .wordLabels(let servedTags) = try await shortEngine.submit(.classify(topK: nil), adapters: ["lang", "tag"], texts: texts) else {
            Issue.record("a tagger answered no word labels"); return
        }
        #expect(servedTags == tagged)

        // adapt embed --adapter lang: AdaptedModel.embed.
        let language = try AdaptedModel.load(backbone: try saveBackbone(fixture), adapter: fixture.path("lang"))
        guard case .embeddings(let embedded) = try await engine.submit(.embed, adapters: ["lang"], texts: texts) else { return }
        #expect(largestDifference(embedded, language.embed(texts, maxLength: 128, batchSize: 4).embeddings) <= 1e-5)
    }

    /// The fixture's backbone saved beside its adapters.
    func saveBackbone(_ fixture: ServeFixture) throws -> String {
        let path = fixture.directory + "/tiny.h5"
        if !FileManager.default.fileExists(atPath: path) { try fixture.backbone.save(to: path) }
        return path
    }

    @Test func badRequestsAreRefusedWithTheirReason() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.maxTexts = 3
        let engine = try fixture.engine(settings)
        func refusal(_ kind: BatchingEngine.RequestKind, _ adapters: [String], _ texts: [String]) async -> ServeError? {
            do { _ = try await engine.submit(kind, adapters: adapters, texts: texts); return nil } catch { return error as? ServeError }
        }
        let unknown = await refusal(.classify(topK: nil), ["nope"], ["a"])
        #expect(unknown?.status == 404 && unknown?.message.contains("no adapter named \"nope\"") == true)
        #expect(await refusal(.classify(topK: nil), ["lora"], [])?.status == 400)
        #expect(await refusal(.classify(topK: nil), ["lora"], ["a", "b", "c", "d"])?.message.contains("at most 3") == true)
        #expect(await refusal(.classify(topK: nil), ["lang"], ["a"])?.message.contains("adapter \"lang\" has no classification head") == true)
        #expect(await refusal(.classify(topK: 2), ["tag"], ["a"])?.message.contains("\"top_k\" applies to sequence heads") == true)
        #expect(await refusal(.classify(topK: nil), [], ["a"])?.status == 400)
        #expect(await refusal(.embed, ["lora"], ["a"]) == nil)
    }

    @Test func aFullQueueRefusesWith429AndCancellingLeavesIt() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.maxQueuedRequests = 1
        let (engine, waiting) = try await fixture.engineHoldingARequest(settings)
        do {
            _ = try await engine.submit(.embed, adapters: [], texts: ["a"])
            Issue.record("a second request fitted a queue of one")
        } catch let error as ServeError {
            #expect(error.status == 429 && error.retryAfter == 1)
        }
        waiting.cancel()
        await #expect(throws: CancellationError.self) { try await waiting.value }
        #expect(engine.queueDepth == 0)
    }

    @Test func aRequestPastItsTimeoutGets504() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.timeout = .milliseconds(50)
        // The batch would wait an hour: only the timeout can answer the request.
        settings.batchWait = .seconds(3600)
        let engine = try fixture.engine(settings)
        await #expect(throws: ServeError(status: 504, "the request took longer than 0.05 seconds")) {
            try await engine.submit(.embed, adapters: [], texts: ["a"])
        }
        #expect(engine.queueDepth == 0)
    }

    @Test func shutdownFinishesWaitingRequestsThenRefuses() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let (engine, waiting) = try await fixture.engineHoldingARequest(adapters: ["lora"], kind: .classify(topK: nil))
        engine.shutdown()
        guard case .predictions(let answer) = try await waiting.value else { Issue.record("no predictions"); return }
        #expect(answer.count == 1)
        await #expect(throws: ServeError(status: 503, "the server is shutting down")) {
            try await engine.submit(.embed, adapters: [], texts: ["a"])
        }
    }

    /// A tagger's request framed its texts as words: if the adapter is replaced by a
    /// sequence classifier while it waits, it is refused (409), not answered wrongly.
    @Test func anAdapterReplacedByAnotherKindOfHeadWhileARequestWaitsIsRefused() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let (engine, waiting) = try await fixture.engineHoldingARequest(adapters: ["tag"], kind: .classify(topK: nil))
        try engine.remove(name: "tag")
        try engine.load(name: "tag", path: fixture.path("bn"))
        engine.shutdown()
        await #expect(throws: ServeError(status: 409, "adapter \"tag\" was replaced by one with another kind of head while the request waited")) {
            try await waiting.value
        }
    }

    @Test func anAdapterOfAnotherBackboneIsRefused() throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let engine = BatchingEngine(backbone: try TinyBackbone.make(seed: 7))
        defer { engine.shutdown() }
        #expect { try engine.load(name: "lora", path: fixture.path("lora")) } throws: { error in
            (error as? ServeError).map { $0.status == 400 && $0.message.contains("cannot load adapter \"lora\"") } ?? false
        }
        #expect(engine.adapters.isEmpty)
    }

    /// Requests keep coming while their adapter is removed and loaded again: each
    /// one is answered, or refused with 404 naming the missing adapter.
    @Test func removingAndLoadingAnAdapterUnderTrafficFailsNoOtherWay() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        var settings = BatchingEngine.Settings()
        settings.batchWait = .milliseconds(1)
        let engine = try fixture.engine(settings)
        let path = fixture.path("lora")
        let outcomes = try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<4 {
                group.addTask {
                    var outcomes: [String] = []
                    for index in 0..<15 {
                        do {
                            let output = try await engine.submit(.classify(topK: nil), adapters: ["lora"], texts: [sampleTexts[(client + index) % 6]])
                            guard case .predictions(let answer) = output, answer.count == 1 else { return ["wrong answer"] }
                            outcomes.append("answered")
                        } catch let error as ServeError where error.status == 404 && error.message.contains("no adapter named \"lora\"") {
                            outcomes.append("refused")
                        }
                        // A refusal takes microseconds: pace the requests over the remove-and-load cycles.
                        try await Task.sleep(for: .milliseconds(3))
                    }
                    return outcomes
                }
            }
            group.addTask {
                for _ in 0..<10 {
                    try engine.remove(name: "lora")
                    try await Task.sleep(for: .milliseconds(2))
                    try engine.load(name: "lora", path: path)
                    try await Task.sleep(for: .milliseconds(2))
                }
                return []
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(outcomes.count == 60 && outcomes.allSatisfy { $0 == "answered" || $0 == "refused" })
        #expect(outcomes.contains("answered"))
    }

    @Test func adaptersAreLoadedAndRemovedByName() async throws {
        let fixture = try ServeFixture()
        defer { fixture.remove() }
        let engine = try fixture.engine()
        #expect(engine.adapters.map(\.name) == ["bn", "lang", "lora", "tag"])
        #expect(engine.adapters.first { $0.name == "lora" } == .init(name: "lora", method: "lora", head: "sequence_classification",
                                                                       labels: ["dry", "wet"]))
        #expect(throws: ServeError.self) { try engine.load(name: "lora", path: fixture.path("bn")) }
        #expect((try? engine.load(name: "x", path: fixture.directory + "/missing.h5")) == nil)
        try engine.remove(name: "lora")
        #expect(engine.adapters.map(\.name) == ["bn", "lang", "tag"])
        #expect(throws: ServeError.notFound("no adapter named \"lora\"; loaded: bn, lang, tag")) { try engine.remove(name: "lora") }
        await #expect(throws: ServeError.self) { try await engine.submit(.classify(topK: nil), adapters: ["lora"], texts: ["a"]) }
        try engine.load(name: "again", path: fixture.path("lora"))
        guard case .predictions(let answer) = try await engine.submit(.classify(topK: nil), adapters: ["again"], texts: ["a"]) else { return }
        #expect(answer.first?.probabilities.keys.sorted() == ["dry", "wet"])
    }
}
