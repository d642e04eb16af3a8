import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateHTTP1
import Tracing

/// One request as read off the wire, on its connection's loop.
///
/// A class, not a struct: the connection keeps it for the reply and the recorder while the
/// stages read it, and a head of some twenty fields copied between them costs a copy and a
/// destruction, each retaining and releasing every buffer inside (`perf`, `docs/benchmarks.md`).
/// The connection reuses the object for its next request when nothing else holds it
/// (`GatewayHandler.serve`), so keep-alive traffic allocates none.
final class GatewayRequest {
    private(set) var head: HTTP1RequestHead
    /// Replaced by its decoded form when the client compressed it.
    var body: ByteBuffer
    private(set) var requestID: String
    private(set) var client: IPAddress?
    private(set) var startedAt: Int64
    /// A WebSocket hand-over, or one message of a WebSocket (whose head is the hand-over's).
    var webSocket: WebSocketRole
    /// The key the connection presented last: kept across `reset`, as the object is the
    /// connection's for as long as it is reused.
    var lastKey = KeyMemo()
    /// The network the connection's last request went to, and its pool: kept across `reset`.
    var lastNetwork = NetworkMemo()

    init(
        head: consuming HTTP1RequestHead, body: consuming ByteBuffer, requestID: String, client: IPAddress?, startedAt: Int64,
        webSocket: WebSocketRole = .none
    ) {
        self.head = head
        self.body = body
        self.requestID = requestID
        self.client = client
        self.startedAt = startedAt
        self.webSocket = webSocket
    }

    /// The next request on the same connection, in this object: only when nothing else holds it.
    func reset(head: consuming HTTP1RequestHead, body: consuming ByteBuffer, requestID: String, client: IPAddress?, startedAt: Int64) {
        self.head = head
        self.body = body
        self.requestID = requestID
        self.client = client
        self.startedAt = startedAt
        self.webSocket = .none
    }
}

enum WebSocketRole {
    case none
    case upgrade
    case message
}

/// What a request came to, gathered stage by stage. Stages only write facts; the
/// `RequestRecorder` turns them into metrics, the telemetry row, the trace and the log line
/// once the reply is out, so no stage calls a metric itself.
struct RequestFacts {
    /// The client's address (behind trusted proxies, the last untrusted hop).
    var client: IPAddress?
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
    /// The request's spans when it is sampled for tracing, and when its auth span began.
    var trace: RequestTrace?
    var authStart: DefaultTracerClock.Timestamp?
    /// Why authentication refused the request (`tollgate_auth_failures_total{reason}`).
    var authFailure: AuthFailure?
    /// How the key was found (`tollgate_keycache_requests_total{result}`): hit, miss, stale, anonymous.
    var keyCache: KeyCacheResult?
    /// Which limit refused the request (`tollgate_ratelimit_rejections_total{kind}`).
    var rateLimited: RateLimitKind?
    /// The compute units charged to the key (admitted requests only).
    var chargedCU = 0
    /// `ok` or the status the pool's failure became (`tollgate_upstream_requests_total{outcome}`).
    var upstreamOutcome: UpstreamOutcome?
    var hedged = false
    /// The response cache's verdict: hit, miss, uncacheable (nil: not asked; bypass).
    var cacheResult: CacheResult?
    /// The request body's content coding and its size once inflated (nil: as it came).
    var requestCoding = HTTP1ContentCoding.identity
    var decodedBytesIn: Int?

    /// Moves the facts out of a lent (`inout`) place, leaving fresh ones: the request path
    /// lends its facts from stage to stage and moves them once, into the `Forwarding`.
    /// (Swapped, not copied: a copy retained every string and object in them, and the
    /// fresh ones' assignment released them again.)
    mutating func take() -> RequestFacts {
        var taken = RequestFacts()
        swap(&self, &taken)
        return taken
    }
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
