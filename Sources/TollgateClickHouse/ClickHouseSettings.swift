import NIOSSL
import TollgateTLS
/// Where telemetry goes and how it is batched. Built by the App from the `telemetry:` section.
public struct ClickHouseSettings: Sendable {
    /// What the `client_ip` column holds.
    public enum ClientIPMode: String, Sendable {
        /// A salted SHA-256 prefix: the same client groups together, the address is not stored.
        case hashed
        case plain
        case omit
    }

    /// Base URLs of the HTTP interface (`http://host:8123`): one node, or the nodes of a cluster.
    /// Batches are spread across them round-robin; a failed attempt moves to the next.
    public var urls: [String]
    public var database: String
    public var table: String
    public var user: String?
    public var password: String?
    /// The file `password` came from, read again for every INSERT (rotation without a restart).
    public var passwordFile: String?
    /// TLS toward `https://` URLs beyond the system's roots: a private CA, and a client
    /// certificate and key (PEM) for servers that require one.
    public var tlsCAFile: String?
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    /// A batch is sent when it reaches this many rows...
    public var batchRows: Int
    /// ...or when this much time has passed since the last one.
    public var flushInterval: Duration
    /// Rows held in memory between loops and the sender; beyond it rows are dropped and counted
    /// (the collector moves rows to the spool long before, unless the disk stalls).
    public var queueRows: Int
    /// One INSERT's deadline.
    public var requestTimeout: Duration
    /// Attempts per batch (across URLs, with backoff) before it goes to the spool.
    public var maxAttempts: Int
    public var backoffBase: Duration
    public var backoffMax: Duration
    public var clientIP: ClientIPMode
    public var clientIPSalt: String
    /// The disk spool; nil keeps batches in memory only (tests).
    public var spool: DiskSpool.Settings?

    public init(
        urls: [String], database: String = "tollgate", table: String = "requests", user: String? = nil,
        password: String? = nil, batchRows: Int = 5_000, flushInterval: Duration = .seconds(1), queueRows: Int = 200_000,
        requestTimeout: Duration = .seconds(10), maxAttempts: Int = 3, backoffBase: Duration = .milliseconds(200),
        backoffMax: Duration = .seconds(30), clientIP: ClientIPMode = .hashed, clientIPSalt: String = "",
        spool: DiskSpool.Settings? = nil
    ) {
        self.urls = urls
        self.database = database
        self.table = table
        self.user = user
        self.password = password
        self.batchRows = batchRows
        self.flushInterval = flushInterval
        self.queueRows = queueRows
        self.requestTimeout = requestTimeout
        self.maxAttempts = maxAttempts
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
        self.clientIP = clientIP
        self.clientIPSalt = clientIPSalt
        self.spool = spool
    }
}

extension ClickHouseSettings {
    /// The client TLS configuration for `https://` URLs; nil: AsyncHTTPClient's default (the
    /// system's roots). Throws with what does not load.
    public func tlsConfiguration() throws -> TLSConfiguration? {
        guard tlsCAFile != nil || tlsCertFile != nil else { return nil }
        return try .client(trusting: tlsCAFile, certificate: tlsCertFile, key: tlsKeyFile)
    }
}
