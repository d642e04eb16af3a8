import NIOSSL
import TollgateTLS
import TollgateRedis
import Yams

/// The `redis:` section. Today it carries key revocations between replicas (pub/sub on
/// `channel`); shared limits and quotas build on the same client (issue 5).
public struct RedisConfig: Sendable {
    public enum Mode: String, Sendable { case standalone, sentinel, cluster }

    public var mode: Mode = .standalone
    public var addresses: [String] = []
    public var masterName: String?
    public var user: String?
    /// Resolved from `password_file` or `password: env:`/`file:`; never logged.
    public var password: String?
    /// Where the password came from, when a file: read again for every new connection, so a
    /// rotated password (a Vault agent, a Kubernetes Secret) is used without a restart.
    public var passwordFile: String?
    public var tls = false
    /// PEM file of the CA that signed the server's certificate (a private CA); default: the system's roots.
    public var tlsCAFile: String?
    /// A client certificate and its key (PEM) for servers that require one (mTLS).
    public var tlsCertFile: String?
    public var tlsKeyFile: String?
    public var connectionsPerNode = 2
    public var timeoutMillis = 1_000
    /// Where key revocations and plan changes are announced.
    public var channel = "tollgate:keys"
    /// Rate limits and monthly quotas shared by every replica through Redis.
    public var sharedLimits = true
    /// The share of each plan a replica enforces alone while Redis is unreachable (e.g. 1/N).
    public var localShare = 1.0
    /// Seconds of a key's rate one lease takes, in milliseconds.
    public var leaseMillis = 50
    /// How long leased units stay usable before they go back to the shared bucket.
    public var leaseTTLMillis = 1_000

    public init() {}

    func clientConfiguration() -> RedisConfiguration {
        let nodes = addresses.compactMap { HostPort($0) }.map { ClusterSlotMap.Node(host: $0.host, port: $0.port) }
        let mode: RedisConfiguration.Mode = switch self.mode {
        case .standalone: .standalone
        case .sentinel: .sentinel(masterName: masterName ?? "mymaster")
        case .cluster: .cluster
        }
        let options = RedisConnection.Options(
            user: user, password: password, passwordFile: passwordFile,
            // The config check has already refused files that do not load.
            tls: tls ? (try? TLSConfiguration.client(trusting: tlsCAFile, certificate: tlsCertFile, key: tlsKeyFile))
                ?? (try? TLSConfiguration.client(trusting: tlsCAFile)) ?? .makeClientConfiguration() : nil,
            commandTimeout: .milliseconds(Int64(timeoutMillis)))
        return RedisConfiguration(mode: mode, addresses: nodes, options: options, connectionsPerNode: connectionsPerNode)
    }
}

extension ConfigReader {
    mutating func readRedis(_ node: Node) -> RedisConfig? {
        var redis = RedisConfig()
        let keys: Set<String> = [
            "mode", "addresses", "master_name", "user", "password", "password_file", "tls", "connections_per_node", "timeout_ms",
            "channel", "tls_ca_file", "tls_cert_file", "tls_key_file", "shared_limits", "local_share", "lease_ms", "lease_ttl_ms",
        ]
        guard let map = mapping(node, "redis", keys: keys) else { return nil }
        if let value = map["mode"], let text = string(value, "redis.mode") {
            if let mode = RedisConfig.Mode(rawValue: text) { redis.mode = mode } else { issue("redis.mode", "must be standalone, sentinel or cluster") }
        }
        if let value = map["addresses"], let list = strings(value, "redis.addresses") {
            for (index, text) in list.enumerated() where HostPort(text) == nil { issue("redis.addresses[\(index)]", "must be host:port") }
            redis.addresses = list
        }
        if redis.addresses.isEmpty { issue("redis.addresses", "needs at least one host:port") }
        if let value = map["master_name"], let name = string(value, "redis.master_name") { redis.masterName = name }
        if redis.mode == .sentinel, redis.masterName == nil { issue("redis.master_name", "is required in sentinel mode") }
        if let value = map["user"], let user = string(value, "redis.user") { redis.user = user }
        if let password = password(in: map, "redis") { redis.password = password }
        redis.passwordFile = passwordFile(in: map)
        if let value = map["tls"] {
            if let flag = value.bool { redis.tls = flag } else { issue("redis.tls", "must be true or false") }
        }
        if let value = map["tls_ca_file"], let path = string(value, "redis.tls_ca_file") {
            if readableFile(path) { redis.tlsCAFile = path } else { issue("redis.tls_ca_file", "cannot read \(path)") }
        }
        for (key, path) in [("tls_cert_file", \RedisConfig.tlsCertFile), ("tls_key_file", \RedisConfig.tlsKeyFile)] {
            if let value = map[key], let file = string(value, "redis.\(key)") {
                if readableFile(file) { redis[keyPath: path] = file } else { issue("redis.\(key)", "cannot read \(file)") }
            }
        }
        if (redis.tlsCertFile == nil) != (redis.tlsKeyFile == nil) { issue("redis.tls_cert_file", "needs tls_key_file beside it (and the other way round)") }
        if let file = redis.tlsCertFile, (try? NIOSSLCertificate.fromPEMFile(file))?.isEmpty != false {
            issue("redis.tls_cert_file", "\(file) holds no PEM certificate")
        }
        if let file = redis.tlsKeyFile, (try? NIOSSLPrivateKey(file: file, format: .pem)) == nil { issue("redis.tls_key_file", "\(file) holds no PEM private key") }
        if let value = map["connections_per_node"], let n = integer(value, "redis.connections_per_node", min: 1) { redis.connectionsPerNode = n }
        if let value = map["timeout_ms"], let n = integer(value, "redis.timeout_ms", min: 1) { redis.timeoutMillis = n }
        if let value = map["channel"], let channel = string(value, "redis.channel") { redis.channel = channel }
        if let value = map["shared_limits"] {
            if let flag = value.bool { redis.sharedLimits = flag } else { issue("redis.shared_limits", "must be true or false") }
        }
        if let value = map["local_share"] {
            if let share = value.float, share > 0, share <= 1 { redis.localShare = share } else { issue("redis.local_share", "must be a fraction above 0 and at most 1, e.g. 0.34 for three replicas") }
        }
        if let value = map["lease_ms"], let n = integer(value, "redis.lease_ms", min: 1) { redis.leaseMillis = n }
        if let value = map["lease_ttl_ms"], let n = integer(value, "redis.lease_ttl_ms", min: 10) { redis.leaseTTLMillis = n }
        return redis
    }
}

