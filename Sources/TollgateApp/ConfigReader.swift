import TollgateCore
import TollgateHTTP1
import TollgateUpstream
import TollgateAdmin
import Yams

/// A config problem, named by the path of the field (`plans.free.cu_per_second`).
public struct ConfigIssue: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String

    public var description: String { "\(path): \(message)" }
}

/// Every problem found in a config file, not just the first.
public struct ConfigErrors: Error, CustomStringConvertible {
    public var issues: [ConfigIssue]
    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Reads YAML into `TollgateConfig`, collecting every error with its path.
///
/// Walks the composed node tree by hand rather than using `Codable`, which stops at the first
/// error and cannot name unknown keys: a typo such as `cu_per_secnd` must be an error, not a
/// silently ignored field that leaves a plan unlimited.
public struct ConfigReader {
    private(set) var issues: [ConfigIssue] = []
    /// Fields that hold a credential written into the file itself (a node's header value, a
    /// key in a node's URL): allowed, but `strict` refuses them.
    private(set) var plaintextSecrets: [String] = []

    /// - Parameter strict: refuse credentials written into the file (`config check --strict`);
    ///   they must come from `env:NAME` or `file:PATH`.
    public static func parse(yaml: String, strict: Bool = false) throws(ConfigErrors) -> TollgateConfig {
        var reader = ConfigReader()
        let config = reader.read(yaml)
        reader.checkReferences(config)
        if strict {
            for path in reader.plaintextSecrets {
                reader.issue(path, "a credential in plain text (--strict): use env:NAME or file:PATH")
            }
        }
        guard reader.issues.isEmpty else { throw ConfigErrors(issues: reader.issues) }
        return config
    }

    mutating func plaintextSecret(_ path: String) { plaintextSecrets.append(path) }

    mutating func read(_ yaml: String) -> TollgateConfig {
        var config = ConfigDefaults.config
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            issue("(file)", "not valid YAML: \(error)")
            return config
        }
        guard let root else { return config }
        guard let top = mapping(root, "(root)", keys: ["server", "store", "networks", "plans", "compute_units", "telemetry", "tracing", "redis", "cache", "auth", "admin"]) else { return config }
        if let node = top["admin"], let admin = mapping(node, "admin", keys: ["listen", "tokens_file", "tls", "public_status"]) {
            if let path = admin["tokens_file"].flatMap({ string($0, "admin.tokens_file") }) {
                var settings = AdminConfig(tokensFile: path)
                if let text = SecretFile.read(path) {
                    do { _ = try AdminTokens(text: text) } catch { issue("admin.tokens_file", "\(path): \(error)") }
                } else {
                    issue("admin.tokens_file", "cannot read \(path)")
                }
                if let value = admin["listen"], let text = string(value, "admin.listen") {
                    if let address = HostPort(text) { settings.listen = address } else { issue("admin.listen", "must be host:port") }
                }
                if let value = admin["tls"] { settings.tls = readServerTLS(value, "admin.tls") }
                if let value = admin["public_status"] { settings.publicStatus = boolean(value, "admin.public_status") ?? false }
                config.admin = settings
            } else {
                issue("admin.tokens_file", "is required: the admin API takes no request without a token")
            }
        }
        if let node = top["auth"] { config.auth = readAuth(node) }
        if let node = top["server"] { readServer(node, into: &config.server) }
        if let node = top["store"] { readStore(node, into: &config.store) }
        if let node = top["networks"] { config.networks = readNetworks(node) }
        if let node = top["telemetry"] { config.telemetry = readTelemetry(node) }
        if let node = top["tracing"] { config.tracing = readTracing(node) }
        if let node = top["redis"] { config.redis = readRedis(node) }
        if let node = top["cache"] { config.cache = readCache(node) }
        if config.cache.redis, config.redis == nil { issue("cache.redis", "needs the redis: section (the servers the replicas share)") }
        if let node = top["plans"] { config.plans = readPlans(node) }
        if let plan = config.store.anonymousPlan, config.plans[plan] == nil {
            issue("store.anonymous_plan", "names plan '\(plan)', which plans: does not declare")
        }
        if let node = top["compute_units"], let table = mapping(node, "compute_units", keys: nil) {
            config.computeUnits = [:]
            for (method, value) in table.sorted(by: { $0.key < $1.key }) {
                if let cost = integer(value, "compute_units.\(method)", min: 0) { config.computeUnits[method] = cost }
            }
        }
        return config
    }

    mutating func readServer(_ node: Node, into server: inout ServerConfig) {
        let keys: Set<String> = [
            "listen", "metrics_listen", "threads", "max_body_bytes", "trusted_proxies", "idle_timeout_ms",
            "drain_timeout_ms", "log_format", "log_level", "auth_cache", "quota_flush_interval_ms",
            "max_header_bytes", "max_headers", "header_timeout_ms", "max_connections", "max_connections_per_ip", "tls", "metrics_tls",
            "blocklist_file", "blocklist_reload_ms", "ws_ping_interval_ms", "ws_max_send_buffer_bytes",
            "compression", "compress_min_bytes", "compress_level",
        ]
        guard let map = mapping(node, "server", keys: keys) else { return }
        if let value = map["tls"] { server.tls = readServerTLS(value, "server.tls") }
        if let value = map["metrics_tls"] { server.metricsTLS = readServerTLS(value, "server.metrics_tls") }
        if let value = map["listen"], let text = string(value, "server.listen") {
            if let address = HostPort(text) { server.listen = address } else { issue("server.listen", "must be host:port") }
        }
        if let value = map["metrics_listen"] {
            if case .scalar(let scalar) = value, scalar.string.isEmpty || scalar.string == "off" || scalar.string == "null" {
                server.metricsListen = nil
            } else if let text = string(value, "server.metrics_listen") {
                if let address = HostPort(text) { server.metricsListen = address } else { issue("server.metrics_listen", "must be host:port or off") }
            }
        }
        if let value = map["threads"] { server.threads = integer(value, "server.threads", min: 1) }
        if let value = map["max_body_bytes"], let bytes = integer(value, "server.max_body_bytes", min: 1) { server.maxBodyBytes = bytes }
        if let value = map["trusted_proxies"], let list = strings(value, "server.trusted_proxies") {
            server.trustedProxies = []
            for (index, text) in list.enumerated() {
                if let cidr = CIDR(text) { server.trustedProxies.append(cidr) } else { issue("server.trusted_proxies[\(index)]", "not a CIDR block: \(text)") }
            }
        }
        if let value = map["idle_timeout_ms"], let ms = integer(value, "server.idle_timeout_ms", min: 1) { server.idleTimeoutMillis = ms }
        if let value = map["drain_timeout_ms"], let ms = integer(value, "server.drain_timeout_ms", min: 0) { server.drainTimeoutMillis = ms }
        if let value = map["max_header_bytes"], let n = integer(value, "server.max_header_bytes", min: 1_024) { server.maxHeaderBytes = n }
        if let value = map["max_headers"], let n = integer(value, "server.max_headers", min: 8) { server.maxHeaders = n }
        if let value = map["header_timeout_ms"], let ms = integer(value, "server.header_timeout_ms", min: 100) { server.headerTimeoutMillis = ms }
        if let value = map["blocklist_file"], let path = string(value, "server.blocklist_file") {
            server.blocklistFile = path
            if let text = SecretFile.read(path) {
                do { _ = try IPBlocklist(text: text) } catch { issue("server.blocklist_file", "\(path): \(error)") }
            } else {
                issue("server.blocklist_file", "cannot read \(path)")
            }
        }
        if let value = map["blocklist_reload_ms"], let ms = integer(value, "server.blocklist_reload_ms", min: 100) { server.blocklistReloadMillis = ms }
        if let value = map["ws_ping_interval_ms"], let ms = integer(value, "server.ws_ping_interval_ms", min: 100) { server.webSocketPingMillis = ms }
        if let value = map["ws_max_send_buffer_bytes"], let n = integer(value, "server.ws_max_send_buffer_bytes", min: 4_096) {
            server.webSocketSendBuffer = n
        }
        if let value = map["compression"], let on = boolean(value, "server.compression") { server.compression = on }
        if let value = map["compress_min_bytes"], let n = integer(value, "server.compress_min_bytes", min: 0) { server.compressMinBytes = n }
        if let value = map["compress_level"], let n = integer(value, "server.compress_level", min: 1) {
            if n <= 9 { server.compressLevel = n } else { issue("server.compress_level", "must be 1 (fastest) to 9 (smallest)") }
        }
        if let value = map["max_connections"] { server.maxConnections = integer(value, "server.max_connections", min: 1) }
        if let value = map["max_connections_per_ip"] { server.maxConnectionsPerIP = integer(value, "server.max_connections_per_ip", min: 1) }
        if let value = map["quota_flush_interval_ms"], let ms = integer(value, "server.quota_flush_interval_ms", min: 100) { server.quotaFlushMillis = ms }
        if let value = map["log_format"], let text = string(value, "server.log_format") {
            if let format = ServerConfig.LogFormat(rawValue: text) { server.logFormat = format } else { issue("server.log_format", "must be text or json") }
        }
        if let value = map["log_level"], let text = string(value, "server.log_level") {
            if ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(text) { server.logLevel = text }
            else { issue("server.log_level", "must be one of trace, debug, info, notice, warning, error, critical") }
        }
        if let value = map["auth_cache"], let cache = mapping(value, "server.auth_cache", keys: ["positive_ttl_ms", "negative_ttl_ms", "max_entries"]) {
            if let v = cache["positive_ttl_ms"], let ms = integer(v, "server.auth_cache.positive_ttl_ms", min: 0) { server.positiveTTLMillis = ms }
            if let v = cache["negative_ttl_ms"], let ms = integer(v, "server.auth_cache.negative_ttl_ms", min: 0) { server.negativeTTLMillis = ms }
            if let v = cache["max_entries"], let n = integer(v, "server.auth_cache.max_entries", min: 1) { server.keyCacheEntries = n }
        }
    }

    mutating func readPlans(_ node: Node) -> [String: Plan] {
        guard let map = mapping(node, "plans", keys: nil) else { return [:] }
        let keys: Set<String> = [
            "cu_per_second", "requests_per_second", "burst_seconds", "monthly_cu", "max_body_bytes", "max_batch",
            "allow_methods", "deny_methods", "networks", "cache", "cache_bypass", "max_connections", "require_jwt",
            "max_ws_connections", "max_subscriptions", "max_ws_batch", "event_cu",
        ]
        var plans: [String: Plan] = [:]
        for (name, value) in map.sorted(by: { $0.key < $1.key }) {
            let path = "plans.\(name)"
            guard Self.isName(name) else { issue(path, "plan names use a-z, 0-9, '-' and '_'"); continue }
            guard let fields = mapping(value, path, keys: keys) else { continue }
            func required(_ key: String) -> Node? {
                if let node = fields[key] { return node }
                issue("\(path).\(key)", "is required")
                return nil
            }
            let cu = required("cu_per_second").flatMap { integer($0, "\(path).cu_per_second", min: 1) }
            let rps = required("requests_per_second").flatMap { integer($0, "\(path).requests_per_second", min: 1) }
            var plan = Plan(name: name, cuPerSecond: cu ?? 1, requestsPerSecond: rps ?? 1, monthlyCU: nil, maxBodyBytes: 256 << 10, maxBatch: 100)
            if let v = fields["burst_seconds"] {
                if let number = v.float, number > 0, number <= 3600 { plan.burstSeconds = number } else { issue("\(path).burst_seconds", "must be a number of seconds above 0") }
            }
            if let v = fields["monthly_cu"] {
                if case .scalar(let s) = v, s.string == "unlimited" { plan.monthlyCU = nil }
                else if let n = integer(v, "\(path).monthly_cu", min: 1) { plan.monthlyCU = Int64(n) }
            }
            if let v = fields["max_body_bytes"], let n = integer(v, "\(path).max_body_bytes", min: 1) { plan.maxBodyBytes = n }
            if let v = fields["max_batch"], let n = integer(v, "\(path).max_batch", min: 1) { plan.maxBatch = n }
            let allow = fields["allow_methods"].flatMap { strings($0, "\(path).allow_methods") } ?? []
            let deny = fields["deny_methods"].flatMap { strings($0, "\(path).deny_methods") } ?? []
            plan.methods = MethodPolicy(allow: allow, deny: deny)
            plan.networks = fields["networks"].flatMap { strings($0, "\(path).networks") } ?? []
            if let v = fields["cache"], let flag = boolean(v, "\(path).cache") { plan.cache = flag }
            if let v = fields["cache_bypass"], let flag = boolean(v, "\(path).cache_bypass") { plan.cacheBypass = flag }
            if let v = fields["max_connections"] { plan.maxConnections = integer(v, "\(path).max_connections", min: 1) }
            if let v = fields["require_jwt"], let flag = boolean(v, "\(path).require_jwt") { plan.requireJWT = flag }
            if let v = fields["max_ws_connections"] { plan.maxWebSocketConnections = integer(v, "\(path).max_ws_connections", min: 1) }
            if let v = fields["max_subscriptions"], let n = integer(v, "\(path).max_subscriptions", min: 0) { plan.maxSubscriptions = n }
            if let v = fields["max_ws_batch"] { plan.maxWebSocketBatch = integer(v, "\(path).max_ws_batch", min: 1) }
            if let v = fields["event_cu"], let table = mapping(v, "\(path).event_cu", keys: ["newHeads", "logs", "newPendingTransactions"]) {
                for (kind, cost) in table { if let n = integer(cost, "\(path).event_cu.\(kind)", min: 0) { plan.eventCU[kind] = n } }
            }
            plans[name] = plan
        }
        if plans.isEmpty { issue("plans", "needs at least one plan") }
        return plans
    }

    /// Cross-field checks once everything is read.
    mutating func checkReferences(_ config: TollgateConfig) {
        let names = Set(config.networks.map(\.name))
        for (name, plan) in config.plans {
            for network in plan.networks where !names.contains(network) {
                issue("plans.\(name).networks", "unknown network '\(network)'")
            }
        }
    }

    // MARK: - Node helpers

    mutating func issue(_ path: String, _ message: String) { issues.append(ConfigIssue(path: path, message: message)) }

    mutating func mapping(_ node: Node, _ path: String, keys: Set<String>?) -> [String: Node]? {
        guard case .mapping(let map) = node else {
            issue(path, "must be a mapping")
            return nil
        }
        var result: [String: Node] = [:]
        for (key, value) in map {
            guard let name = key.string else { issue(path, "keys must be strings"); continue }
            if let keys, !keys.contains(name) {
                issue(path == "(root)" ? name : "\(path).\(name)", "unknown key (expected one of: \(keys.sorted().joined(separator: ", ")))")
                continue
            }
            result[name] = value
        }
        return result
    }

    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            issue(path, "must be a string")
            return nil
        }
        return scalar.string
    }

    mutating func boolean(_ node: Node, _ path: String) -> Bool? {
        switch node.scalar?.string {
        case "true", "on", "yes": return true
        case "false", "off", "no": return false
        default:
            issue(path, "must be true or false")
            return nil
        }
    }

    /// Milliseconds become nanoseconds in Int64 (and counts are multiplied by rates), so
    /// integers are bounded: a typo of twelve zeros is an error, not an overflow at start.
    static let maxMillis = 1_000_000_000_000  // about 31 years
    static let maxInteger = 1_000_000_000_000_000

    mutating func integer(_ node: Node, _ path: String, min: Int) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string.replacingUnderscores), value >= min else {
            issue(path, min >= 1 ? "must be a positive integer" : "must be an integer of at least \(min)")
            return nil
        }
        let max = path.hasSuffix("_ms") ? Self.maxMillis : path == "server.threads" ? 1_024
            : path == "server.max_header_bytes" ? HTTP1Limits.headerBytesCeiling : Self.maxInteger
        guard value <= max else {
            issue(path, "must be at most \(max)")
            return nil
        }
        return value
    }

    mutating func strings(_ node: Node, _ path: String) -> [String]? {
        guard case .sequence(let list) = node else {
            issue(path, "must be a list of strings")
            return nil
        }
        var result: [String] = []
        for (index, item) in list.enumerated() {
            guard case .scalar(let scalar) = item, !scalar.string.isEmpty, !scalar.string.contains("\n") else {
                issue("\(path)[\(index)]", "must be a non-empty string")
                continue
            }
            result.append(scalar.string)
        }
        return result
    }

    static func isName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" || $0 == "_" }
    }
}

extension String {
    fileprivate var replacingUnderscores: String { filter { $0 != "_" } }
}
