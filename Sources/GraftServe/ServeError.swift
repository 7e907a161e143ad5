/// A request the server refuses or cannot answer, with its HTTP status and a
/// message for the client (sent as `{"error": MESSAGE}`).
public struct ServeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The HTTP status code.
    public let status: Int
    /// What was wrong, for the client.
    public let message: String
    /// Seconds after which the client may retry (the `Retry-After` header), for 429 and 503.
    public let retryAfter: Int?

    /// An error answered with HTTP status `status` and `{"error": message}`.
    public init(status: Int, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    /// The status and the message, as `STATUS: MESSAGE`.
    public var description: String { "\(status): \(message)" }

    static func badRequest(_ message: String) -> ServeError { ServeError(status: 400, message) }
    static func notFound(_ message: String) -> ServeError { ServeError(status: 404, message) }
    static func forbidden(_ message: String) -> ServeError { ServeError(status: 403, message) }
}
