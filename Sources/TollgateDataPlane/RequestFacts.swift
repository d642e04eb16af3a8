import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateHTTP1

/// One request as read off the wire.
struct GatewayRequest {
    var head: HTTP1RequestHead
    var body: ByteBuffer
    var requestID: String
    var client: IPAddress?
    var startedAt: Int64
}

/// What a request came to, gathered along the pipeline for metrics, telemetry and the log.
struct RequestFacts {
    var network = "-"
    var method = "-"
    var plan = "-"
    var keyID: Int64?
    var keyPrefix: String?
    var batchSize = 0
    var computeUnits = 0
    var upstream: String?
    var attempts = 0
    var upstreamNanos: Int64 = 0
    /// The Origin to echo in CORS headers, when the key allows it.
    var corsOrigin: String?
    /// `RateLimit-*` values for an authenticated request, written as numbers into the head.
    var rateLimit: RateLimitValues?
    /// The request's spans when it is sampled for tracing.
    var trace: RequestTrace?
}

struct RateLimitValues {
    var limit: Int
    var remaining: Int
    /// Whole seconds until the key's burst is full again.
    var reset: Int

    init(limit: Int, remaining: Int, resetAfter nanoseconds: Int64) {
        self.limit = limit
        self.remaining = remaining
        reset = Int(max(0, (nanoseconds + 999_999_999) / 1_000_000_000))
    }
}

/// A reply and the facts behind it.
struct GatewayOutcome {
    var reply: GatewayReply
    var facts: RequestFacts
}
