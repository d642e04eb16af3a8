import TollgateClickHouse

/// The `telemetry:` section: where request records go, and the access log.
public struct TelemetryConfig: Sendable {
    public var clickhouse: ClickHouseConfig?
    public var spoolDir = "./spool"
    public var spoolMaxBytes = 1 << 30
    public var spoolSegmentBytes = 8 << 20
    public var spoolFsync: DiskSpool.FsyncPolicy = .segment
    /// `stdout`, a file path, or nil (off).
    public var accessLog: String?

    public init() {}
}

public struct ClickHouseConfig: Sendable {
    public var urls: [String]
    public var database = "tollgate"
    public var table = "requests"
    public var user: String?
    /// Resolved from `password_file` or `password: env:NAME`; never logged.
    public var password: String?
    /// `password_file` (or `password: file:PATH`): read again for every INSERT.
    public var passwordFile: String?
    public var batchRows = 5_000
    public var flushIntervalMillis = 1_000
    public var queueRows = 200_000
    public var timeoutMillis = 10_000
    public var maxAttempts = 3
    public var backoffMillis = 200
    public var backoffMaxMillis = 30_000
    public var clientIP: ClickHouseSettings.ClientIPMode = .hashed
    public var clientIPSalt = ""
    /// TLS toward https:// URLs: a private CA, a client certificate and key.
    public var tlsCAFile: String?
    public var tlsCertFile: String?
    public var tlsKeyFile: String?

    public init(urls: [String]) {
        self.urls = urls
    }
}

extension TelemetryConfig {
    /// The sink's settings, with the spool under `spoolDir`.
    func clickHouseSettings() -> ClickHouseSettings? {
        guard let clickhouse else { return nil }
        var settings = ClickHouseSettings(
            urls: clickhouse.urls, database: clickhouse.database, table: clickhouse.table, user: clickhouse.user,
            password: clickhouse.password, batchRows: clickhouse.batchRows, flushInterval: .milliseconds(clickhouse.flushIntervalMillis),
            queueRows: clickhouse.queueRows, requestTimeout: .milliseconds(clickhouse.timeoutMillis), maxAttempts: clickhouse.maxAttempts,
            backoffBase: .milliseconds(clickhouse.backoffMillis), backoffMax: .milliseconds(clickhouse.backoffMaxMillis),
            clientIP: clickhouse.clientIP, clientIPSalt: clickhouse.clientIPSalt,
            spool: DiskSpool.Settings(directory: spoolDir, segmentBytes: spoolSegmentBytes, maxBytes: spoolMaxBytes, fsync: spoolFsync))
        settings.passwordFile = clickhouse.passwordFile
        settings.tlsCAFile = clickhouse.tlsCAFile
        settings.tlsCertFile = clickhouse.tlsCertFile
        settings.tlsKeyFile = clickhouse.tlsKeyFile
        return settings
    }
}
