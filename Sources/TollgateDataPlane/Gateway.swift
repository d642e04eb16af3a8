import Logging
import NIOCore
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// Answers toward clients that accept gzip or deflate (`server.compression`).
public struct CompressionSettings: Sendable {
    /// Smaller answers go as they are (`server.compress_min_bytes`).
    public var minimumBytes: Int
    /// zlib's level, 1 (fastest) to 9 (`server.compress_level`).
    public var level: Int

    public init(minimumBytes: Int = 1024, level: Int = 1) {
        self.minimumBytes = minimumBytes
        self.level = level
    }
}

/// Server-wide limits that apply before a key is known.
public struct GatewaySettings: Sendable {
    /// Hard cap on a request body, before any plan is known; plans may only lower it.
    public var maxBodyBytes: Int
    /// Proxies whose `X-Forwarded-For` is believed.
    public var trustedProxies: [CIDR]
    /// A connection with no request in flight and no bytes read for this long is closed.
    public var idleTimeout: TimeAmount
    /// How long browsers may cache a CORS preflight answer, in seconds.
    public var corsMaxAge: Int
    /// The request line and headers together (431 past it).
    public var maxHeaderBytes: Int
    /// Header fields per request (431 past it).
    public var maxHeaders: Int
    /// How long a client may take to send a whole request head, however it trickles it (slowloris).
    public var headerTimeout: TimeAmount
    /// Open connections past which new ones are refused (nil: no cap), in all and per address.
    public var maxConnections: Int?
    public var maxConnectionsPerIP: Int?
    /// A WebSocket is pinged this often; one that sends nothing (not even the pong) for a whole
    /// interval is dropped.
    public var webSocketPingInterval: TimeAmount = .seconds(30)
    /// Bytes that may wait to be sent to one WebSocket client before it is closed (1008) as
    /// too slow: the bound on what a client that stops reading can make the gateway hold.
    public var webSocketSendBuffer = 4 << 20
    /// Compressed answers for clients that ask; nil: never compress.
    public var compression: CompressionSettings? = CompressionSettings()

    public init(
        maxBodyBytes: Int = 5 << 20, trustedProxies: [CIDR] = [], idleTimeout: TimeAmount = .seconds(75), corsMaxAge: Int = 600,
        maxHeaderBytes: Int = 16_384, maxHeaders: Int = 100, headerTimeout: TimeAmount = .seconds(10),
        maxConnections: Int? = nil, maxConnectionsPerIP: Int? = nil
    ) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
        self.maxBodyBytes = maxBodyBytes
        self.trustedProxies = trustedProxies
        self.idleTimeout = idleTimeout
        self.corsMaxAge = corsMaxAge
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaders = maxHeaders
        self.headerTimeout = headerTimeout
    }
}

/// What every connection's handler shares: settings, the key directory, the CU table, metrics,
/// telemetry and the per-loop state table. Immutable after start, so no handler locks it.
public final class Gateway: Sendable {
    public let settings: GatewaySettings
    public let networks: Set<String>
    public let directory: KeyDirectory
    public let computeUnits: ComputeUnitTable
    public let metrics: GatewayMetrics
    public let telemetry: any TelemetrySink
    let telemetryEnabled: Bool
    public let logger: Logger
    public let loops: LoopStates
    /// Answers `/readyz` on the event loop, from state the process holds: ready while every
    /// network has a node its last health check passed; backends that are away but worked
    /// around (key store, Redis, ClickHouse) are reported as degraded. Never waits on a backend.
    public let readiness: @Sendable () -> Readiness
    public let tracing: GatewayTracing
    /// The response cache's rules and its in-process store; nil: no cache.
    public let cache: ResponseCacheSettings?
    let responseCache: ResponseCacheStore?
    /// Bytes the response cache holds and its evictions so far, for metrics; nil without a cache.
    public var responseCacheStats: (@Sendable () -> (bytes: Int, evictions: ResponseCacheEvictions))? {
        guard let store = responseCache else { return nil }
        return { (store.bytes, store.evictions) }
    }
    /// Identical cacheable misses in flight go upstream once (with the cache).
    let singleFlight: SingleFlight?
    /// SHA-256, or HMAC-SHA256 with `auth.pepper_file`: how presented keys are hashed.
    let keyHasher: KeyHasher
    /// JWTs beside keys (`auth.jwt`); nil: off.
    public let jwt: JWTVerifier?
    /// Brute-force protection (`auth.failed_auth`); nil: off.
    /// The failed-auth limiter; the app shares its counts across replicas when Redis is set.
    public let authFailures: AuthFailureGuard?
    /// Shared upstream subscriptions (`eth_subscribe`), for networks with nodes that have a `ws_url`.
    let subscriptions: SubscriptionHub?
    /// Open WebSockets per key across replicas (Redis); nil: counted on this replica alone.
    let webSocketCounter: (any SharedConnectionCounter)?
    /// Subscriptions per key across replicas (Redis); nil: counted on this replica alone.
    let subscriptionCounter: (any SharedConnectionCounter)?
    /// Monotonic nanoseconds; the same clock the key directory uses.
    let clock: @Sendable () -> Int64
    /// Methods that change chain state: never retried once sent. (The instance's copy is read
    /// per request; the static one is what `init` can read before `self` is whole.)
    let writeMethods: MethodSet = Gateway.writes
    static let writes: MethodSet = ["eth_sendRawTransaction", "eth_sendTransaction", "eth_sendRawTransactionConditional", "eth_sendBundle"]
    /// The method names calls share rather than read into a new String each (`MethodNames`):
    /// every name with a price, a metric label or a write flag of its own, as configured at
    /// start (a name a reload adds is read into a String of its own, as before).
    let methodNames: MethodNames

    public init(
        settings: GatewaySettings, networks: Set<String>, directory: KeyDirectory, computeUnits: ComputeUnitTable,
        metrics: GatewayMetrics, telemetry: any TelemetrySink, logger: Logger, loops: LoopStates,
        readiness: @escaping @Sendable () -> Readiness, tracing: GatewayTracing = .off, cache: ResponseCacheSettings? = nil,
        failedAuth: FailedAuthLimiter.Settings? = nil, keyHasher: KeyHasher = .plain, jwt: JWTVerifier? = nil,
        clock: @escaping @Sendable () -> Int64 = Gateway.monotonicNanos,
        webSocketUpstreams: [String: [NodeSubscriber.Endpoint]] = [:], stallTimeouts: [String: TimeAmount] = [:],
        webSocketCounter: (any SharedConnectionCounter)? = nil, subscriptionCounter: (any SharedConnectionCounter)? = nil
    ) {
        self.webSocketCounter = webSocketCounter
        self.subscriptionCounter = subscriptionCounter
        if let home = loops.all.first, webSocketUpstreams.values.contains(where: { !$0.isEmpty }) {
            subscriptions = SubscriptionHub(home: home, endpoints: webSocketUpstreams,
                settings: stallTimeouts.mapValues { SubscriptionFeed.Settings(stallTimeout: $0) }, metrics: metrics, logger: logger)
        } else {
            subscriptions = nil
        }
        self.keyHasher = keyHasher
        self.jwt = jwt
        self.authFailures = failedAuth.map(AuthFailureGuard.init)
        self.tracing = tracing
        self.cache = cache
        self.responseCache = cache.map { ResponseCacheStore(maxBytes: $0.maxBytes) }
        self.singleFlight = cache.map { _ in SingleFlight() }
        self.settings = settings
        self.networks = networks
        self.directory = directory
        self.computeUnits = computeUnits
        self.metrics = metrics
        self.methodNames = MethodNames(Array(computeUnits.exact.keys) + Array(metrics.knownMethods) + Array(Self.writes.names))
        self.telemetry = telemetry
        self.telemetryEnabled = telemetry.isEnabled
        self.logger = logger
        self.loops = loops
        self.readiness = readiness
        self.clock = clock
    }

    /// Forgets the key with `prefix` in the process-wide cache and every loop's copy: a
    /// revocation announced by another replica takes effect with the next request.
    public func invalidate(prefix: String) async {
        directory.invalidate(prefix: prefix)
        for loop in loops.all {
            try? await loop.eventLoop.submit { loop.invalidate(prefix: prefix) }.get()
        }
    }

    /// A config reload's plans and compute-unit table. Requests already past authentication
    /// finish on the terms they started with; the next ones on every loop use the new ones.
    public func reload(plans: [String: Plan], computeUnits: ComputeUnitTable) async {
        directory.replacePlans(plans)
        for loop in loops.all {
            try? await loop.eventLoop.submit {
                loop.computeUnits = computeUnits
                loop.forgetKeys()
            }.get()
        }
    }

    /// A config reload's networks and nodes: `make` builds each loop's new pools on that loop
    /// (from its current ones, whose breakers and latencies it may carry over). Requests already
    /// sent finish on the pool they started with; the replaced pools close their idle
    /// connections and keep no connection a finished request hands back.
    public func replacePools(_ make: @escaping @Sendable (LoopState) -> [String: any UpstreamPool]) async {
        var served: [String] = []
        for loop in loops.all {
            served = (try? await loop.eventLoop.submit {
                let old = loop.pools
                let new = make(loop)
                loop.pools = new
                loop.networks = Set(new.keys)
                for (name, pool) in old where new[name] !== pool { pool.close() }
                return Array(new.keys)
            }.get()) ?? served
        }
        metrics.prime(networks: served)
    }

    /// Installs a new blocklist on every loop (each swaps it in between two events of its own):
    /// new connections and requests from then on are checked against it.
    public func setBlocklist(_ blocklist: IPBlocklist) async {
        for loop in loops.all {
            try? await loop.eventLoop.submit { loop.blocklist = blocklist }.get()
        }
    }

    /// Hands every loop's buffered telemetry records to the sink. The telemetry service calls
    /// this each interval and once more at shutdown, after the listener has drained.
    public func flushTelemetry() async {
        guard telemetryEnabled else { return }
        for loop in loops.all {
            let sink = telemetry
            try? await loop.eventLoop.submit { loop.flushTelemetry(to: sink) }.get()
        }
    }

    @Sendable public static func monotonicNanos() -> Int64 { MonotonicClock.now() }
}
