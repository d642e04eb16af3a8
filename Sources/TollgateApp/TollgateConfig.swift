import TollgateCore
import TollgateUpstream

/// The whole configuration, as read from `tollgate.yaml` (or the built-in defaults).
public struct TollgateConfig: Sendable {
    public var server = ServerConfig()
    public var store = StoreConfig()
    /// Networks by name, in file order.
    public var networks: [NetworkConfig] = []
    public var plans: [String: Plan] = [:]
    public var computeUnits: [String: Int] = [:]
    public var telemetry = TelemetryConfig()
    public var tracing = TracingConfig()
    /// The JSON-RPC response cache (off unless enabled).
    var cache = CacheConfig()
    /// Off (nil) in the embedded default.
    public var redis: RedisConfig?
    public var auth = AuthConfig()
    /// The admin API; nil: off.
    public var admin: AdminConfig?

    public init() {}

    public var computeUnitTable: ComputeUnitTable { ComputeUnitTable.standard.applying(computeUnits) }
}

public struct ServerConfig: Sendable {
    public var listen = HostPort(host: "127.0.0.1", port: 8545)
    public var metricsListen: HostPort? = HostPort(host: "127.0.0.1", port: 9464)
    public var threads: Int?
    public var maxBodyBytes = 5 << 20
    public var trustedProxies: [CIDR] = []
    public var idleTimeoutMillis = 75_000
    public var drainTimeoutMillis = 30_000
    public var maxHeaderBytes = 16_384
    public var maxHeaders = 100
    public var headerTimeoutMillis = 10_000
    /// Open client connections across the listener; nil: no cap.
    public var maxConnections: Int? = 50_000
    /// Open client connections from one address; nil: no cap.
    public var maxConnectionsPerIP: Int?
    /// CIDRs refused before anything else (one per line), re-read when the file changes.
    public var blocklistFile: String?
    public var blocklistReloadMillis = 5_000
    /// WebSocket pings (a client silent for a whole interval is dropped), and the bytes that
    /// may wait for one slow WebSocket client before it is closed with 1008.
    public var webSocketPingMillis = 30_000
    public var webSocketSendBuffer = 4 << 20
    /// Answers of at least `compressMinBytes` go out gzip (or deflate) to clients that accept
    /// it; `compressLevel` 1 (fastest) to 9.
    public var compression = true
    public var compressMinBytes = 1024
    public var compressLevel = 1
    public var logFormat: LogFormat = .text
    public var logLevel = "info"
    public var positiveTTLMillis = 10_000
    public var negativeTTLMillis = 2_000
    public var keyCacheEntries = 100_000
    public var quotaFlushMillis = 5_000
    /// HTTPS on the gateway listener (`server.tls`) and on the ops listener (`server.metrics_tls`).
    public var tls: ServerTLSConfig?
    public var metricsTLS: ServerTLSConfig?

    public enum LogFormat: String, Sendable { case text, json }
}

public struct HostPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or `:port`.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

public struct StoreConfig: Sendable {
    public var sqlitePath = "./tollgate.db"
    /// The distributed key store; nil means SQLite at `sqlitePath`.
    public var postgres: PostgresConfig?
    /// How long a cached key keeps working past its TTL while the store cannot answer.
    public var maxStaleMillis = 300_000
    /// The plan an unknown key is served under while the store cannot answer; nil fails closed (503).
    public var anonymousPlan: String?
}

public struct NetworkConfig: Sendable, Equatable {
    public var name: String
    public var chainID: Int
    public var upstreams: [NodeConfig]
    public var timeoutMillis = 30_000
    public var connectTimeoutMillis = 3_000
    /// Per try on one node; default a third of `timeoutMillis`.
    public var attemptTimeoutMillis: Int?
    public var maxBlockLag: UInt64 = 10
    /// Depth taken as final for nodes that do not know the `finalized` tag.
    public var finalityDepth: UInt64 = 64
    public var maxAttempts = 3
    /// A node's answer, decoded, at most (a bigger one, or a gzip that inflates past it, is a 502).
    public var maxResponseBytes = 256 << 20
    public var retryRatio = 0.2
    public var circuitBreaker = CircuitBreaker.Settings()
    public var methodTimeoutsMillis: [String: Int] = [:]
    public var hedge: HedgePolicy?
    public var healthIntervalMillis = 5_000
    /// A `newHeads` node that sends no head for this long is replaced by the next.
    public var webSocketStallMillis = 30_000
    public var healthTimeoutMillis = 2_000

    public init(name: String, chainID: Int, upstreams: [String]) {
        self.name = name
        self.chainID = chainID
        self.upstreams = upstreams.map { NodeConfig(url: $0) }
    }
}

public struct NodeConfig: Sendable, Equatable {
    public var url: String
    /// The node's WebSocket endpoint, for shared subscriptions (`eth_subscribe`).
    public var webSocketURL: String?
    public var weight: Double = 1
    public var role = "primary"
    public var allowMethods: [String] = []
    public var denyMethods: [String] = []
    public var maxInFlight: Int?
    /// Resolved `Name: value` lines (values from `env:` or `file:` already read). Never logged.
    public var headers: [String] = []
    /// Ask the node for gzip; nil: yes for https nodes, no for http ones.
    public var compression: Bool?
    /// TLS toward this node beyond the system's roots: a private CA, a client certificate.
    public var tlsCAFile: String?
    public var tlsCertFile: String?
    public var tlsKeyFile: String?

    public init(url: String) { self.url = url }
}

/// The admin API (`admin:`): off unless present; its own listener, never the gateway's port.
public struct AdminConfig: Sendable, Equatable {
    public var listen = HostPort(host: "127.0.0.1", port: 9465)
    /// `NAME read|write SHA256HEX` per line (`AdminTokens`): hashes only, never tokens.
    public var tokensFile: String
    /// HTTPS on the admin listener; with `client_ca_file` and `require_client_cert`, only
    /// clients holding a certificate from that CA reach it (their token still sets the role).
    public var tls: ServerTLSConfig?
    /// The status page (`/`, `/status`) without a token, as a provider's public status page:
    /// nodes named `node 1`, `node 2`… and their errors left out. With a token it is the full page.
    public var publicStatus = false
    public init(tokensFile: String) { self.tokensFile = tokensFile }
}
