import Foundation
import Graft
import Logging

/// One frozen backbone with adapters loaded by name, answering classification
/// and embedding requests in dynamic, mixed-adapter batches.
///
/// Requests wait in a queue; one worker thread takes the waiting requests (up
/// to `Settings.maxBatchTokens` tokens, after waiting up to `Settings.batchWait`
/// for more to arrive) and runs them in one packed forward pass (texts back to
/// back, no padding), each request's texts under its own adapters
/// (``GraftedModel/callAsFunction(_:groups:)``). Every text gets the output it
/// gets alone (within 1e-5: the GEMMs may split the rows differently).
/// Adapters are loaded and removed between forward passes. The engine runs
/// until ``shutdown()``.
public final class BatchingEngine: @unchecked Sendable {
    /// How requests are batched and bounded.
    public struct Settings: Sendable {
        /// Tokens per forward pass; a request larger than this runs alone. 1 turns
        /// batching across requests off.
        public var maxBatchTokens = 4096
        /// How long the first waiting request waits for others to join its batch; 0: no waiting.
        public var batchWait = Duration.milliseconds(2)
        /// Requests that may wait; more are refused with 429.
        public var maxQueuedRequests = 256
        /// Tokens per text (special tokens included); longer texts are cut, as `adapt predict --max-length` does.
        public var maxLength = 128
        /// Texts per request.
        public var maxTexts = 64
        /// How long a request may take, waiting included (504 after it).
        public var timeout = Duration.seconds(30)

        /// The defaults of `adapt serve`.
        public init() {}
    }

    /// What a request asks of the model.
    public enum RequestKind: Sendable, Equatable {
        /// From the top adapter's head: a sequence head's class probabilities (the `topK`
        /// most probable, all if `nil`), or a token head's label for each word.
        case classify(topK: Int?)
        /// Mean-pooled, L2-normalised embeddings.
        case embed
    }

    /// What a request gets back, one entry per text.
    public enum Output: Sendable, Equatable {
        /// A sequence head's label and class probabilities for each text.
        case predictions([SequencePrediction])
        /// A token head's words and their labels for each text.
        case wordLabels([TokenPrediction])
        /// A mean-pooled, L2-normalised embedding (hidden-size floats) for each text.
        case embeddings([[Float]])
    }

    /// A loaded adapter, as `GET /v1/adapters` lists it.
    public struct AdapterInfo: Codable, Sendable, Equatable {
        /// The name requests select the adapter by.
        public let name: String
        /// The adapter method (`seq_bn`, `lora`, ...), as stored in its checkpoint.
        public let method: String
        /// `sequence_classification`, `token_classification`, `masked_lm`, or `nil` without a head.
        public let head: String?
        /// The head's class names; empty for a masked-LM head or none.
        public let labels: [String]
    }

    /// The frozen backbone every request runs through.
    public let backbone: Backbone
    /// How requests are batched and bounded.
    public let settings: Settings
    /// Batch sizes, queue depth and tokens (the server adds its request counts).
    public let metrics: ServeMetrics
    let logger: Logger

    // Guarded by `modelLock`, which the model thread holds for a whole batch.
    private let model: GraftedModel
    private let modelLock = NSLock()
    // Guarded by `registryLock`, held only briefly (requests are checked against
    // it without waiting for a batch); changed only under `modelLock` too.
    private var loaded: [String: Loaded] = [:]
    private let registryLock = NSLock()

    /// A loaded adapter's method and head.
    private struct Loaded {
        let method: String
        let head: (configuration: HeadConfiguration, module: any Module)?
    }

    // Guarded by `queue`: waiting jobs and the worker's state.
    private let queue = NSCondition()
    private var waiting: [Job] = []
    private var stopping = false
    private let stopped = DispatchSemaphore(value: 0)

    /// An engine with no adapters yet over `backbone` (frozen here); starts the model thread.
    public init(backbone: Backbone, settings: Settings = Settings(), metrics: ServeMetrics = ServeMetrics(),
                logger: Logger = Logger(label: "graft.serve")) {
        self.backbone = backbone
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        model = GraftedModel(encoder: backbone.encoder)
        // The thread holds the engine until `shutdown()`.
        let worker = Thread { [self] in
            while let batch = nextBatch() { run(batch) }
            stopped.signal()
        }
        worker.name = "graft-serve-model"
        worker.start()
    }

    /// Finishes the waiting requests, then stops the model thread, which holds
    /// the engine until then. Requests after this are refused with 503.
    public func shutdown() {
        queue.lock()
        let wasRunning = !stopping
        stopping = true
        queue.broadcast()
        queue.unlock()
        if wasRunning { stopped.wait() }
    }

    // MARK: Adapters

    /// Loads the adapter checkpoint at `path` (a Graft file or a peft directory) under `name`.
    /// - Throws: `ServeError`: 409 for a name in use, 400 for a file that is not an adapter of this backbone.
    @discardableResult
    public func load(name: String, path: String) throws -> AdapterInfo {
        guard !name.isEmpty, !name.contains(",") else { throw ServeError.badRequest("an adapter name must be non-empty and without commas") }
        let checkpoint: AdapterCheckpoint
        do { checkpoint = try AdapterCheckpoint.load(from: path, backbone: backbone) } catch {
            throw ServeError.badRequest("cannot load adapter \"\(name)\" from \(path): \(error)")
        }
        let head = checkpoint.headConfiguration.flatMap { configuration in checkpoint.head.map { (configuration, $0) } }
        try modelLock.withLock {
            do { try model.add(name, checkpoint.adapter) } catch { throw ServeError(status: 409, "\(error)") }
            registryLock.withLock { loaded[name] = Loaded(method: checkpoint.adapter.method, head: head) }
        }
        logger.info("adapter loaded", metadata: ["name": "\(name)", "method": "\(checkpoint.adapter.method)", "path": "\(path)"])
        return info(name)
    }

    /// Removes adapter `name`; requests already batched with it finish first.
    /// - Throws: `ServeError` (404) if there is none.
    public func remove(name: String) throws {
        try modelLock.withLock {
            try registryLock.withLock {
                guard loaded.removeValue(forKey: name) != nil else { throw unknown(name) }
            }
            model.remove(name)
        }
        logger.info("adapter removed", metadata: ["name": "\(name)"])
    }

    /// The loaded adapters, by name.
    public var adapters: [AdapterInfo] { registryLock.withLock { loaded.keys.sorted().map(infoLocked) } }

    private func info(_ name: String) -> AdapterInfo { registryLock.withLock { infoLocked(name) } }

    /// Call under `registryLock`.
    private func infoLocked(_ name: String) -> AdapterInfo {
        let adapter = loaded[name]!
        return AdapterInfo(name: name, method: adapter.method, head: adapter.head?.configuration.kind,
                           labels: adapter.head?.configuration.labels ?? [])
    }

    /// Call under `registryLock`.
    private func unknown(_ name: String) -> ServeError {
        ServeError.notFound("no adapter named \"\(name)\"; loaded: \(loaded.keys.sorted().joined(separator: ", "))")
    }

    // MARK: Requests

    /// The outputs for `texts` under `adapters` (a stack, lowest first; none:
    /// the plain backbone), computed in a batch with other waiting requests.
    /// - Throws: `ServeError`: 400 for bad input, 404 for an unknown adapter among them,
    ///   429 when the queue is full, 503 after `shutdown`, 504 after `Settings.timeout`.
    public func submit(_ kind: RequestKind, adapters: [String], texts: [String]) async throws -> Output {
        guard !texts.isEmpty else { throw ServeError.badRequest("\"texts\" is empty: give at least one text") }
        guard texts.count <= settings.maxTexts else {
            throw ServeError.badRequest("\(texts.count) texts in one request; at most \(settings.maxTexts) are allowed")
        }
        let setup: AdapterSetup? = switch adapters.count {
        case 0: nil
        case 1: .single(adapters[0])
        default: .stack(adapters.map { .single($0) })
        }
        let maxLength = backbone.tokenLimit(settings.maxLength)
        let job = switch try head(for: kind, setup: setup) {
        case .token:
            Job(kind: kind, setup: setup, frames: texts.map { TokenPrediction.frame($0, tokenizer: backbone.tokenizer, maxLength: maxLength) })
        case .sequence, nil:
            Job(kind: kind, setup: setup, ids: texts.map { backbone.tokenizer.encode($0, maxLength: maxLength) })
        }
        return try await withThrowingTaskGroup(of: Output.self) { group in
            group.addTask { try await self.enqueue(job) }
            group.addTask {
                try await Task.sleep(for: self.settings.timeout)
                throw ServeError(status: 504, "the request took longer than \(self.settings.timeout)")
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// A classification head and its labels.
    private enum Head {
        /// A head that labels the whole text, with its label names.
        case sequence(SequenceClassificationHead, labels: [String])
        /// A head that labels each word, with its label names.
        case token(TokenClassificationHead, labels: [String])
    }

    /// The head the output of a `kind` request under `setup` comes from (`nil` for embeddings).
    private func head(for kind: RequestKind, setup: AdapterSetup?) throws -> Head? {
        registryLock.lock()
        defer { registryLock.unlock() }
        for name in setup?.names ?? [] where loaded[name] == nil { throw unknown(name) }
        guard case .classify(let topK) = kind else { return nil }
        guard let top = setup?.names.last else {
            throw ServeError.badRequest("classification needs an adapter with a classification head: give \"adapter\" or \"adapters\"")
        }
        switch loaded[top]?.head {
        case let (configuration, module as SequenceClassificationHead)?: return .sequence(module, labels: configuration.labels)
        case let (configuration, module as TokenClassificationHead)?:
            guard topK == nil else { throw ServeError.badRequest("\"top_k\" applies to sequence heads; adapter \"\(top)\" labels words") }
            return .token(module, labels: configuration.labels)
        case let head: throw ServeError.badRequest("adapter \"\(top)\" has no classification head" + (head.map { " (its head: \($0.configuration.kind))" } ?? ""))
        }
    }

    /// The head of a job about to run: the one it was framed for, unless its adapter changed meanwhile.
    private func head(for job: Job) throws -> Head? {
        let head = try head(for: job.kind, setup: job.setup)
        let isToken = if case .token = head { true } else { false }
        guard isToken == (job.frames != nil) else {
            throw ServeError(status: 409, "adapter \"\(job.setup?.names.last ?? "")\" was replaced by one with another kind of head while the request waited")
        }
        return head
    }

    private func enqueue(_ job: Job) async throws -> Output {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Output, any Error>) in
                queue.lock()
                let refusal: (any Error)? = if job.cancelled { CancellationError() }
                    else if stopping { ServeError(status: 503, "the server is shutting down") }
                    else if waiting.count >= settings.maxQueuedRequests {
                        ServeError(status: 429, "\(waiting.count) requests are waiting; try again shortly", retryAfter: 1)
                    } else { nil }
                if refusal == nil {
                    job.continuation = continuation
                    waiting.append(job)
                    metrics.queueDepth.set(Double(waiting.count))
                    queue.broadcast()
                }
                queue.unlock()
                if let refusal { continuation.resume(throwing: refusal) }
            }
        } onCancel: {
            queue.lock()
            job.cancelled = true
            waiting.removeAll { $0 === job }
            metrics.queueDepth.set(Double(waiting.count))
            queue.unlock()
            finish(job, .failure(CancellationError()))
        }
    }

    /// Resumes the job's caller once (later calls do nothing).
    private func finish(_ job: Job, _ result: Result<Output, any Error>) {
        queue.lock()
        let continuation = job.continuation
        job.continuation = nil
        queue.unlock()
        continuation?.resume(with: result)
    }

    /// Requests waiting for the model now.
    public var queueDepth: Int { queue.withLock { waiting.count } }

    // MARK: The worker

    /// The next batch: waits for a request, then up to `batchWait` for others,
    /// and takes waiting requests in order while they fit `maxBatchTokens`.
    /// `nil` once stopping with nothing left.
    private func nextBatch() -> [Job]? {
        queue.lock()
        defer { queue.unlock() }
        // Cancelled requests leave the queue meanwhile: it may be empty again after the wait.
        repeat {
            while waiting.isEmpty && !stopping { queue.wait() }
            guard !waiting.isEmpty else { return nil }
            let deadline = Date().addingTimeInterval(Double(settings.batchWait.nanoseconds) / 1e9)
            while !stopping, !waiting.isEmpty, waiting.reduce(0, { $0 + $1.tokens }) < settings.maxBatchTokens,
                  queue.wait(until: deadline) {}
        } while waiting.isEmpty
        var count = 1, tokens = waiting[0].tokens
        while count < waiting.count && tokens + waiting[count].tokens <= settings.maxBatchTokens {
            tokens += waiting[count].tokens
            count += 1
        }
        let batch = Array(waiting.prefix(count))
        waiting.removeFirst(count)
        metrics.queueDepth.set(Double(waiting.count))
        return batch
    }

    /// A job ready to run, with the head its output comes from.
    private typealias Entry = (job: Job, head: Head?)

    /// Runs a batch's jobs, each under its own setup, in one forward pass (the jobs
    /// of one setup side by side: one group, one adapter application, per setup),
    /// and answers each job.
    private func run(_ jobs: [Job]) {
        modelLock.lock()
        defer { modelLock.unlock() }
        var ready: [Entry] = []
        for job in jobs {
            do { ready.append((job, try head(for: job))) } catch { finish(job, .failure(error)) }
        }
        guard !ready.isEmpty else { return }
        ready = ready.enumerated().sorted { ($0.element.job.setupKey, $0.offset) < ($1.element.job.setupKey, $1.offset) }.map(\.element)
        let start = ContinuousClock.now
        let outputs = Result { try forward(ready) }
        let duration = ContinuousClock.now - start
        let texts = ready.reduce(0) { $0 + $1.job.ids.count }, tokens = ready.reduce(0) { $0 + $1.job.tokens }
        let setups = Set(ready.map(\.job.setupKey)).count
        metrics.batch(texts: texts, setups: setups, tokens: tokens, duration: duration)
        logger.debug("batch", metadata: ["requests": "\(ready.count)", "texts": "\(texts)", "setups": "\(setups)",
                                         "tokens": "\(tokens)", "milliseconds": "\(duration.nanoseconds / 1_000_000)"])
        switch outputs {
        case .success(let outputs): for (entry, output) in zip(ready, outputs) { finish(entry.job, .success(output)) }
        case .failure(let error):
            logger.error("batch failed", metadata: ["error": "\(error)"])
            for entry in ready { finish(entry.job, .failure(ServeError(status: 500, "\(error)"))) }
        }
    }

    /// The outputs of `ready`'s jobs from one packed pass through the backbone; call under `modelLock`.
    private func forward(_ ready: [Entry]) throws -> [Output] {
        var groups: [ExampleGroup] = []
        for (job, _) in ready {
            if let last = groups.last, last.setup == job.setup { groups[groups.count - 1].examples += job.ids.count }
            else { groups.append(ExampleGroup(setup: job.setup, examples: job.ids.count)) }
        }
        let input = EncoderInput(packing: ready.flatMap(\.job.ids))
        let hidden = try model(input, groups: groups)
        var first = 0
        return ready.map { job, head in
            let examples = first..<(first + job.ids.count)
            first = examples.upperBound
            let (slice, tokens) = input.examples(examples)
            let states = hidden.slice(alongAxis: 0, tokens)
            switch (job.kind, head) {
            case (.embed, _):
                return .embeddings(normalizedRows(meanPool(states, input: slice).value))
            case let (.classify(topK), .sequence(module, labels)?):
                let probabilities = module(states, input: slice, context: .inference()).value.softmax()
                return .predictions((0..<examples.count).map { row in
                    SequencePrediction(probabilities: Array(probabilities.scalars[(row * labels.count)..<((row + 1) * labels.count)]),
                                       labels: labels, topK: topK)
                })
            case let (.classify, .token(module, labels)?):
                let predicted = module(states, context: .inference()).value.argmax()  // one row per token position
                return .wordLabels(job.frames!.enumerated().map { row, frame in
                    return TokenPrediction(words: frame.words, example: frame.example, labels: labels) { predicted[slice.firstRows[row] + $0] }
                })
            case (.classify, nil): preconditionFailure("a classification job without a head")
            }
        }
    }
}

/// One request's texts waiting for (or in) a forward pass.
private final class Job: @unchecked Sendable {
    let kind: BatchingEngine.RequestKind
    let setup: AdapterSetup?
    /// Token ids of each text.
    let ids: [[Int]]
    /// For a token head: each text's words and their frame (whose ids are `ids`).
    let frames: [(words: [String], example: TokenExample)]?
    /// Orders jobs so that those of one setup are adjacent.
    let setupKey: String
    /// Tokens of all texts.
    let tokens: Int
    // Guarded by the engine's queue lock.
    var continuation: CheckedContinuation<BatchingEngine.Output, any Error>?
    var cancelled = false

    convenience init(kind: BatchingEngine.RequestKind, setup: AdapterSetup?, frames: [(words: [String], example: TokenExample)]) {
        self.init(kind: kind, setup: setup, ids: frames.map(\.example.ids), frames: frames)
    }

    init(kind: BatchingEngine.RequestKind, setup: AdapterSetup?, ids: [[Int]], frames: [(words: [String], example: TokenExample)]? = nil) {
        self.kind = kind
        self.setup = setup
        self.ids = ids
        self.frames = frames
        setupKey = setup?.description ?? ""
        tokens = ids.reduce(0) { $0 + $1.count }
    }
}
