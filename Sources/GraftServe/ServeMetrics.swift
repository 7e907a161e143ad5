import Prometheus

/// The server's Prometheus metrics (`GET /metrics`), all prefixed `graft_serve_`.
public final class ServeMetrics: Sendable {
    /// The Prometheus registry the metrics live in.
    public let registry = PrometheusCollectorRegistry()
    /// Texts per forward pass.
    let batchTexts: ValueHistogram
    /// Different adapter setups per forward pass (1: no mixing).
    let batchSetups: ValueHistogram
    /// Requests waiting for the model.
    let queueDepth: Gauge
    /// Tokens through the model (passes are packed: no padding).
    let tokens: Counter
    /// Tokens per second of the latest forward pass.
    let tokensPerSecond: Gauge

    /// A new registry holding the server's metrics.
    public init() {
        let name = Self.name
        let sizes: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        batchTexts = registry.makeValueHistogram(descriptor: name("batch", "texts", "Texts per forward pass"), buckets: sizes)
        batchSetups = registry.makeValueHistogram(descriptor: name("batch", "setups", "Adapter setups mixed in one forward pass"),
                                                  buckets: [1, 2, 4, 8, 16, 32])
        queueDepth = registry.makeGauge(descriptor: name("queue", "depth", "Requests waiting for the model"))
        tokens = registry.makeCounter(descriptor: name("tokens", "total", "Tokens through the model"))
        tokensPerSecond = registry.makeGauge(descriptor: name("tokens_per", "second", "Tokens per second of the latest forward pass"))
    }

    /// Counts a finished HTTP request.
    func request(endpoint: String, status: Int, seconds: Duration) {
        registry.makeCounter(descriptor: Self.requests, labels: [("endpoint", endpoint), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.latency, labels: [("endpoint", endpoint)], buckets: Self.latencyBuckets)
            .recordNanoseconds(seconds.nanoseconds)
    }

    /// Records a forward pass of `texts` texts (`tokens` tokens) over `setups` setups, taking `duration`.
    func batch(texts: Int, setups: Int, tokens count: Int, duration: Duration) {
        batchTexts.record(Int64(texts))
        batchSetups.record(Int64(setups))
        tokens.increment(by: Int64(count))
        let seconds = Double(duration.nanoseconds) / 1e9
        if seconds > 0 { tokensPerSecond.set(Double(count) / seconds) }
    }

    /// The metrics in Prometheus' text format.
    public func text() -> String { registry.emitToString() }

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "graft", subsystem: "serve", metricName: metric, unitName: unit, helpText: help)
    }
    private static var requests: MetricNameDescriptor { name("requests", "total", "HTTP requests by endpoint and status") }
    private static var latency: MetricNameDescriptor { name("request_duration", "seconds", "HTTP request latency by endpoint") }
    private static let latencyBuckets: [Duration] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000].map { .milliseconds($0) }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
