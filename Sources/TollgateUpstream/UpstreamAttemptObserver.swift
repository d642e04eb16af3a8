/// Sees each attempt (retry or hedge leg) a pool makes for one request. Tracing implements it
/// to give every attempt its own span and the node a `traceparent` naming that span; the pool
/// knows nothing of tracing, and a request without an observer pays one nil check.
public protocol UpstreamAttemptObserver: AnyObject {
    /// An attempt is about to be sent to `node`; the returned span (if any) supplies its
    /// `traceparent` and hears how it ended.
    func attemptStarted(node: String) -> (any UpstreamAttemptSpan)?
}

/// One attempt as the observer follows it.
public protocol UpstreamAttemptSpan: AnyObject {
    /// The W3C `traceparent` header value to send with this attempt (nil: the tracer does
    /// not speak W3C, send none).
    var traceparent: String? { get }
    /// `ok`, `node_error`, `connect_failed`, `timeout`, `broken` or `cancelled`.
    func finished(outcome: String)
}
