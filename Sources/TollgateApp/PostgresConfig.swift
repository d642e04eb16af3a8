import TollgatePostgres
import Yams

/// `store.postgres`: the distributed key store. Absent means the embedded SQLite store.
public struct PostgresConfig: Sendable {
    public var hosts: [String] = []
    public var database = "tollgate"
    public var user = "tollgate"
    /// Resolved from `password_file` or `password: env:`/`file:`; never logged.
    public var password: String?
    /// The file the password came from, read again as it changes.
    public var passwordFile: String?
    public var poolSize = 8
    public var tls: PostgresSettings.TLSMode = .disable
    /// PEM file of the CA that signed the servers' certificates; default: the system's roots.
    public var tlsCAFile: String?
    /// A client certificate and key (PEM) for servers that require one.
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    public var queryTimeoutMillis = 2_000
    public var connectTimeoutMillis = 1_000

    public init() {}

    func settings() -> PostgresSettings {
        var settings = PostgresSettings(
            hosts: hosts.compactMap(HostPort.init).map { .init(host: $0.host, port: $0.port) }, database: database, user: user,
            password: password, poolSize: poolSize, tls: tls, tlsCAFile: tlsCAFile, queryTimeout: .milliseconds(Int64(queryTimeoutMillis)),
            connectTimeout: .milliseconds(Int64(connectTimeoutMillis)))
        settings.passwordFile = passwordFile
        settings.tlsCertFile = tlsCertFile
        settings.tlsKeyFile = tlsKeyFile
        return settings
    }
}

extension ConfigReader {
    mutating func readStore(_ node: Node, into store: inout StoreConfig) {
        let keys: Set<String> = ["sqlite", "postgres", "max_stale_ms", "anonymous_plan"]
        guard let map = mapping(node, "store", keys: keys) else { return }
        if let path = map["sqlite"].flatMap({ string($0, "store.sqlite") }) { store.sqlitePath = path }
        if let value = map["max_stale_ms"], let n = integer(value, "store.max_stale_ms", min: 0) { store.maxStaleMillis = n }
        if let value = map["anonymous_plan"], let plan = string(value, "store.anonymous_plan") { store.anonymousPlan = plan }
        if let value = map["postgres"] { store.postgres = readPostgres(value) }
        if map["sqlite"] != nil, map["postgres"] != nil { issue("store", "takes sqlite or postgres, not both") }
    }

    private mutating func readPostgres(_ node: Node) -> PostgresConfig? {
        var pg = PostgresConfig()
        let keys: Set<String> = [
            "hosts", "database", "user", "password", "password_file", "pool_size", "tls", "tls_ca_file", "tls_cert_file", "tls_key_file",
            "query_timeout_ms", "connect_timeout_ms",
        ]
        guard let map = mapping(node, "store.postgres", keys: keys) else { return nil }
        if let value = map["hosts"], let list = strings(value, "store.postgres.hosts") {
            for (index, text) in list.enumerated() where HostPort(text) == nil { issue("store.postgres.hosts[\(index)]", "must be host:port") }
            pg.hosts = list
        }
        if pg.hosts.isEmpty { issue("store.postgres.hosts", "needs at least one host:port") }
        if let value = map["database"], let text = string(value, "store.postgres.database") { pg.database = text }
        if let value = map["user"], let text = string(value, "store.postgres.user") { pg.user = text }
        if let password = password(in: map, "store.postgres") { pg.password = password }
        pg.passwordFile = passwordFile(in: map)
        if let value = map["pool_size"], let n = integer(value, "store.postgres.pool_size", min: 1) { pg.poolSize = n }
        if let value = map["tls"], let text = string(value, "store.postgres.tls") {
            if let mode = PostgresSettings.TLSMode(rawValue: text) { pg.tls = mode } else { issue("store.postgres.tls", "must be disable, prefer or require") }
        }
        if let value = map["tls_ca_file"], let path = string(value, "store.postgres.tls_ca_file") {
            if readableFile(path) { pg.tlsCAFile = path } else { issue("store.postgres.tls_ca_file", "cannot read \(path)") }
        }
        for (key, path) in [("tls_cert_file", \PostgresConfig.tlsCertFile), ("tls_key_file", \PostgresConfig.tlsKeyFile)] {
            guard let value = map[key], let file = string(value, "store.postgres.\(key)") else { continue }
            if readableFile(file) { pg[keyPath: path] = file } else { issue("store.postgres.\(key)", "cannot read \(file)") }
        }
        if (map["tls_cert_file"] == nil) != (map["tls_key_file"] == nil) { issue("store.postgres.tls_cert_file", "tls_cert_file and tls_key_file go together") }
        if map["tls_cert_file"] != nil, pg.tls == .disable { issue("store.postgres.tls_cert_file", "needs tls: require (or prefer)") }
        if let value = map["query_timeout_ms"], let n = integer(value, "store.postgres.query_timeout_ms", min: 1) { pg.queryTimeoutMillis = n }
        if let value = map["connect_timeout_ms"], let n = integer(value, "store.postgres.connect_timeout_ms", min: 1) { pg.connectTimeoutMillis = n }
        return pg
    }
}
