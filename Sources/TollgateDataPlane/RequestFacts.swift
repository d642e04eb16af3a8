import NIOCore
import NIOHTTP1
import TollgateCore

/// One request as read off the wire.
struct GatewayRequest {
    var head: HTTPRequestHead
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
}

/// A reply and the facts behind it.
struct GatewayOutcome {
    var reply: GatewayReply
    var facts: RequestFacts
}
