import TollgateCore
import TollgateUpstream
import Yams
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    public static func parse(yaml: String) throws(ConfigErrors) -> TollgateConfig {
        var reader = ConfigReader()
        let config = reader.read(yaml)
        reader.checkReferences(config)
        guard reader.issues.isEmpty else { throw ConfigErrors(issues: reader.issues) }
        return config
    }

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
        guard let top = mapping(root, "(root)", keys: ["server", "store", "networks", "plans", "compute_units"]) else { return config }
        if let node = top["server"] { readServer(node, into: &config.server) }
        if let node = top["store"], let store = mapping(node, "store", keys: ["sqlite"]) {
            if let path = store["sqlite"].flatMap({ string($0, "store.sqlite") }) {
                config.store.sqlitePath = path
            }
        }
        if let node = top["networks"] { config.networks = readNetworks(node) }
        if let node = top["plans"] { config.plans = readPlans(node) }
        if let node = top["compute_units"], let table = mapping(node, "compute_units", keys: nil) {
            config.computeUnits = [:]
            for (method, value) in table.sorted(by: { $0.key < $1.key }) {
                if let cost = integer(value, "compute_units.\(method)", min: 0) { config.computeUnits[method] = cost }
            }
        }
        return config
    }

    private mutating func readServer(_ node: Node, into server: inout ServerConfig) {
        let keys: Set<String> = [
            "listen", "metrics_listen", "threads", "max_body_bytes", "trusted_proxies", "idle_timeout_ms",
            "drain_timeout_ms", "log_format", "log_level", "auth_cache", "quota_flush_interval_ms",
        ]
        guard let map = mapping(node, "server", keys: keys) else { return }
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

    private mutating func readNetworks(_ node: Node) -> [NetworkConfig] {
        guard let map = mapping(node, "networks", keys: nil) else { return [] }
        var networks: [NetworkConfig] = []
        for (name, value) in map.sorted(by: { $0.key < $1.key }) {
            let path = "networks.\(name)"
            guard Self.isName(name) else { issue(path, "network names use a-z, 0-9, '-' and '_'"); continue }
            let networkKeys: Set<String> = [
                "chain_id", "upstreams", "timeout_ms", "connect_timeout_ms", "attempt_timeout_ms", "max_block_lag",
                "max_attempts", "retry_ratio", "circuit_breaker", "health_check", "method_timeouts_ms", "hedge",
            ]
            guard let net = mapping(value, path, keys: networkKeys) else { continue }
            var network = NetworkConfig(name: name, chainID: 0, upstreams: [])
            if let v = net["chain_id"] { network.chainID = integer(v, "\(path).chain_id", min: 1) ?? 0 } else { issue("\(path).chain_id", "is required") }
            if let v = net["timeout_ms"], let ms = integer(v, "\(path).timeout_ms", min: 1) { network.timeoutMillis = ms }
            if let v = net["connect_timeout_ms"], let ms = integer(v, "\(path).connect_timeout_ms", min: 1) { network.connectTimeoutMillis = ms }
            if let v = net["attempt_timeout_ms"], let ms = integer(v, "\(path).attempt_timeout_ms", min: 1) { network.attemptTimeoutMillis = ms }
            if let v = net["max_block_lag"], let lag = integer(v, "\(path).max_block_lag", min: 0) { network.maxBlockLag = UInt64(lag) }
            if let v = net["max_attempts"], let n = integer(v, "\(path).max_attempts", min: 1) { network.maxAttempts = n }
            if let v = net["retry_ratio"] {
                if let ratio = v.float, ratio >= 0, ratio <= 1 { network.retryRatio = ratio } else { issue("\(path).retry_ratio", "must be a number from 0 to 1") }
            }
            if let v = net["method_timeouts_ms"], let table = mapping(v, "\(path).method_timeouts_ms", keys: nil) {
                for (method, value) in table.sorted(by: { $0.key < $1.key }) {
                    if let ms = integer(value, "\(path).method_timeouts_ms.\(method)", min: 1) { network.methodTimeoutsMillis[method] = ms }
                }
            }
            if let v = net["hedge"], let hedge = mapping(v, "\(path).hedge", keys: ["delay_ms", "quantile", "min_delay_ms"]) {
                if let v = hedge["delay_ms"] {
                    if let ms = integer(v, "\(path).hedge.delay_ms", min: 1) { network.hedge = .fixed(.milliseconds(ms)) }
                } else if let v = hedge["quantile"] {
                    let minimum = hedge["min_delay_ms"].flatMap { integer($0, "\(path).hedge.min_delay_ms", min: 1) } ?? 5
                    if let q = v.float, q > 0, q < 1 { network.hedge = .quantile(q, minimum: .milliseconds(minimum)) }
                    else { issue("\(path).hedge.quantile", "must be a number between 0 and 1, e.g. 0.9") }
                } else {
                    issue("\(path).hedge", "needs delay_ms or quantile")
                }
            }
            if let v = net["circuit_breaker"] { network.circuitBreaker = readBreaker(v, "\(path).circuit_breaker") }
            if let v = net["health_check"], let check = mapping(v, "\(path).health_check", keys: ["interval_ms", "timeout_ms"]) {
                if let v = check["interval_ms"], let ms = integer(v, "\(path).health_check.interval_ms", min: 50) { network.healthIntervalMillis = ms }
                if let v = check["timeout_ms"], let ms = integer(v, "\(path).health_check.timeout_ms", min: 10) { network.healthTimeoutMillis = ms }
            }
            if let v = net["upstreams"], case .sequence(let list) = v {
                for (index, item) in list.enumerated() {
                    let itemPath = "\(path).upstreams[\(index)]"
                    let nodeKeys: Set<String> = ["url", "weight", "role", "allow_methods", "deny_methods", "max_in_flight", "headers"]
                    guard let upstream = mapping(item, itemPath, keys: nodeKeys) else { continue }
                    guard let urlNode = upstream["url"] else { issue("\(itemPath).url", "is required"); continue }
                    guard let url = string(urlNode, "\(itemPath).url") else { continue }
                    if UpstreamNode(url: url) == nil { issue("\(itemPath).url", "must be an http:// or https:// URL without credentials") }
                    var node = NodeConfig(url: url)
                    if let v = upstream["weight"] {
                        if let weight = v.float, weight > 0 { node.weight = weight } else { issue("\(itemPath).weight", "must be a number above 0") }
                    }
                    if let v = upstream["role"], let role = string(v, "\(itemPath).role") {
                        if role == "primary" || role == "fallback" { node.role = role } else { issue("\(itemPath).role", "must be primary or fallback") }
                    }
                    node.allowMethods = upstream["allow_methods"].flatMap { strings($0, "\(itemPath).allow_methods") } ?? []
                    node.denyMethods = upstream["deny_methods"].flatMap { strings($0, "\(itemPath).deny_methods") } ?? []
                    if let v = upstream["max_in_flight"] { node.maxInFlight = integer(v, "\(itemPath).max_in_flight", min: 1) }
                    if let v = upstream["headers"], let headers = mapping(v, "\(itemPath).headers", keys: nil) {
                        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
                            let headerPath = "\(itemPath).headers.\(name)"
                            guard let text = string(value, headerPath), let resolved = secret(text, headerPath) else { continue }
                            guard UpstreamNode.isValidHeader(name: name, value: resolved) else {
                                issue(headerPath, "not a valid header name or value")
                                continue
                            }
                            node.headers.append("\(name): \(resolved)")
                        }
                    }
                    network.upstreams.append(node)
                }
                if list.isEmpty { issue("\(path).upstreams", "needs at least one node") }
            } else {
                issue("\(path).upstreams", "must be a list of nodes (- url: http://…)")
            }
            networks.append(network)
        }
        if networks.isEmpty { issue("networks", "needs at least one network") }
        return networks
    }

    private mutating func readPlans(_ node: Node) -> [String: Plan] {
        guard let map = mapping(node, "plans", keys: nil) else { return [:] }
        let keys: Set<String> = [
            "cu_per_second", "requests_per_second", "burst_seconds", "monthly_cu", "max_body_bytes", "max_batch",
            "allow_methods", "deny_methods", "networks",
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
            plans[name] = plan
        }
        if plans.isEmpty { issue("plans", "needs at least one plan") }
        return plans
    }

    /// A value given as `env:NAME` (from the environment) or `file:PATH` (a file's content, one
    /// trailing newline dropped), or literally. Secrets belong in the first two, never in the file.
    private mutating func secret(_ text: String, _ path: String) -> String? {
        if text.hasPrefix("env:") {
            let name = String(text.dropFirst(4))
            guard let value = getenv(name) else {
                issue(path, "environment variable \(name) is not set")
                return nil
            }
            return String(cString: value)
        }
        if text.hasPrefix("file:") {
            let file = String(text.dropFirst(5))
            guard var value = ConfigLoader.readFile(file) else {
                issue(path, "cannot read \(file)")
                return nil
            }
            if value.hasSuffix("\n") { value.removeLast() }
            if value.hasSuffix("\r") { value.removeLast() }
            return value
        }
        return text
    }

    private mutating func readBreaker(_ node: Node, _ path: String) -> CircuitBreaker.Settings {
        let keys: Set<String> = [
            "consecutive_failures", "failure_rate", "minimum_requests", "window_seconds", "cool_down_ms", "probes", "successes_to_close",
        ]
        var settings = CircuitBreaker.Settings()
        guard let map = mapping(node, path, keys: keys) else { return settings }
        if let v = map["consecutive_failures"], let n = integer(v, "\(path).consecutive_failures", min: 1) { settings.consecutiveFailures = n }
        if let v = map["failure_rate"] {
            if let rate = v.float, rate > 0, rate <= 1 { settings.failureRate = rate } else { issue("\(path).failure_rate", "must be a number above 0, at most 1") }
        }
        if let v = map["minimum_requests"], let n = integer(v, "\(path).minimum_requests", min: 1) { settings.minimumRequests = n }
        if let v = map["window_seconds"], let n = integer(v, "\(path).window_seconds", min: 1) { settings.windowSeconds = n }
        if let v = map["cool_down_ms"], let ms = integer(v, "\(path).cool_down_ms", min: 1) { settings.coolDown = .milliseconds(ms) }
        if let v = map["probes"], let n = integer(v, "\(path).probes", min: 1) { settings.probes = n }
        if let v = map["successes_to_close"], let n = integer(v, "\(path).successes_to_close", min: 1) { settings.successesToClose = n }
        return settings
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

    private mutating func mapping(_ node: Node, _ path: String, keys: Set<String>?) -> [String: Node]? {
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

    private mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else {
            issue(path, "must be a string")
            return nil
        }
        return scalar.string
    }

    private mutating func integer(_ node: Node, _ path: String, min: Int) -> Int? {
        guard case .scalar(let scalar) = node, let value = Int(scalar.string.replacingUnderscores), value >= min else {
            issue(path, min >= 1 ? "must be a positive integer" : "must be an integer of at least \(min)")
            return nil
        }
        return value
    }

    private mutating func strings(_ node: Node, _ path: String) -> [String]? {
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
