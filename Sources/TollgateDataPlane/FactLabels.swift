// The facts a stage chooses from a fixed set, kept as small enums rather than Strings: the
// facts are moved from stage to stage and destroyed per request, and each String in them was
// 16 bytes to copy and a release to make whether set or not (`destroy for Forwarding`,
// docs/benchmarks.md, tenth and eleventh sessions). The metric label is spelled once, here,
// and only read when a metric handle is first made for it.

/// How the key was found (`tollgate_keycache_requests_total{result}`).
enum KeyCacheResult: UInt8, Sendable {
    case hit, miss, stale, anonymous

    var label: String {
        switch self {
        case .hit: "hit"
        case .miss: "miss"
        case .stale: "stale"
        case .anonymous: "anonymous"
        }
    }
}

/// The response cache's verdict on a request that needed an answer
/// (`tollgate_cache_requests_total{result}`, the telemetry row's `cache`).
enum CacheResult: UInt8, Sendable {
    case hit, miss, uncacheable, bypass

    var label: String {
        switch self {
        case .hit: "hit"
        case .miss: "miss"
        case .uncacheable: "uncacheable"
        case .bypass: "bypass"
        }
    }
}

/// Why authentication refused a request (`tollgate_auth_failures_total{reason}`).
enum AuthFailure: UInt8, Sendable {
    case missing, malformed, unknown, plan, storeUnavailable, blocklist, tooManyFailures, secret, jwt, forbidden

    var label: String {
        switch self {
        case .missing: "missing"
        case .malformed: "malformed"
        case .unknown: "unknown"
        case .plan: "plan"
        case .storeUnavailable: "store_unavailable"
        case .blocklist: "blocklist"
        case .tooManyFailures: "too_many_failures"
        case .secret: "secret"
        case .jwt: "jwt"
        case .forbidden: "forbidden"
        }
    }
}

/// Which limit refused a request (`tollgate_ratelimit_rejections_total{kind}`).
enum RateLimitKind: UInt8, Sendable {
    case requests, cu

    /// The limiters name the limit that refused: `cu`, else the request rate.
    init(_ kind: String) {
        self = kind == "cu" ? .cu : .requests
    }

    var label: String {
        switch self {
        case .requests: "requests"
        case .cu: "cu"
        }
    }
}

/// How a forwarded request ended upstream (`tollgate_upstream_requests_total{outcome}`):
/// `ok`, or the status the pool's failure became.
enum UpstreamOutcome: Equatable, Sendable {
    case ok
    case status(Int)

    var label: String {
        switch self {
        case .ok: "ok"
        case .status(let code): String(code)
        }
    }
}
