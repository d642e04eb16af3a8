/// How to reach the key store's PostgreSQL hosts. Built by the app from `store.postgres`.
public struct PostgresSettings: Sendable, Equatable {
    public struct Host: Sendable, Equatable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { "\(host):\(port)" }
    }

    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    /// Every host of the cluster, primary and standbys in any order: the store finds the primary.
    public var hosts: [Host]
    public var database: String
    public var user: String
    public var password: String?
    /// The file `password` came from, when it did: read again every `passwordCheckInterval`, and
    /// on a change new connections use the new password (a Vault agent or a Kubernetes Secret
    /// rotates it without a restart) while open ones finish what they carry.
    public var passwordFile: String?
    public var passwordCheckInterval: Duration = .seconds(2)
    /// Connections per host.
    public var poolSize: Int
    public var tls: TLSMode
    /// PEM file of the CA to trust instead of the system's roots.
    public var tlsCAFile: String?
    /// A client certificate and its key (PEM), for servers that require one
    /// (`hostssl … clientcert=verify-full`).
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    /// Bounds each statement, lease wait included: a dead host must not hold a request or a flush.
    public var queryTimeout: Duration
    public var connectTimeout: Duration

    public init(
        hosts: [Host], database: String, user: String, password: String?, poolSize: Int = 8, tls: TLSMode = .disable,
        tlsCAFile: String? = nil, queryTimeout: Duration = .seconds(2), connectTimeout: Duration = .seconds(1)
    ) {
        self.tlsCAFile = tlsCAFile
        self.hosts = hosts
        self.database = database
        self.user = user
        self.password = password
        self.poolSize = poolSize
        self.tls = tls
        self.queryTimeout = queryTimeout
        self.connectTimeout = connectTimeout
    }
}

/// Why the store could not answer.
public enum PostgresStoreError: Error, CustomStringConvertible {
    case timeout(host: String)
    case noPrimary(tried: [String])
    case newerSchema(Int)

    public var description: String {
        switch self {
        case .timeout(let host): "PostgreSQL at \(host) did not answer in time"
        case .noPrimary(let tried): "no writable PostgreSQL primary among \(tried.joined(separator: ", "))"
        case .newerSchema(let version): "the database schema (version \(version)) is newer than this tollgate"
        }
    }
}
