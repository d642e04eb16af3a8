#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TollgateCore
import TollgateUpstream
import Yams

/// Networks and their nodes: the upstream half of the config.
extension ConfigReader {
    mutating func readNetworks(_ node: Node) -> [NetworkConfig] {
        guard let map = mapping(node, "networks", keys: nil) else { return [] }
        var networks: [NetworkConfig] = []
        for (name, value) in map.sorted(by: { $0.key < $1.key }) {
            let path = "networks.\(name)"
            guard Self.isName(name) else { issue(path, "network names use a-z, 0-9, '-' and '_'"); continue }
            let networkKeys: Set<String> = [
                "chain_id", "upstreams", "timeout_ms", "connect_timeout_ms", "attempt_timeout_ms", "max_block_lag", "finality_depth",
                "max_attempts", "retry_ratio", "circuit_breaker", "health_check", "method_timeouts_ms", "hedge", "ws_stall_ms",
                "max_response_bytes",
            ]
            guard let net = mapping(value, path, keys: networkKeys) else { continue }
            var network = NetworkConfig(name: name, chainID: 0, upstreams: [])
            if let v = net["chain_id"] { network.chainID = integer(v, "\(path).chain_id", min: 1) ?? 0 } else { issue("\(path).chain_id", "is required") }
            if let v = net["timeout_ms"], let ms = integer(v, "\(path).timeout_ms", min: 1) { network.timeoutMillis = ms }
            if let v = net["connect_timeout_ms"], let ms = integer(v, "\(path).connect_timeout_ms", min: 1) { network.connectTimeoutMillis = ms }
            if let v = net["attempt_timeout_ms"], let ms = integer(v, "\(path).attempt_timeout_ms", min: 1) { network.attemptTimeoutMillis = ms }
            if let v = net["max_block_lag"], let lag = integer(v, "\(path).max_block_lag", min: 0) { network.maxBlockLag = UInt64(lag) }
            if let v = net["finality_depth"], let depth = integer(v, "\(path).finality_depth", min: 1) { network.finalityDepth = UInt64(depth) }
            if let v = net["max_attempts"], let n = integer(v, "\(path).max_attempts", min: 1) { network.maxAttempts = n }
            if let v = net["max_response_bytes"], let n = integer(v, "\(path).max_response_bytes", min: 1_024) { network.maxResponseBytes = n }
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
            if let v = net["ws_stall_ms"], let ms = integer(v, "\(path).ws_stall_ms", min: 100) { network.webSocketStallMillis = ms }
            if let v = net["upstreams"], case .sequence(let list) = v {
                for (index, item) in list.enumerated() {
                    let itemPath = "\(path).upstreams[\(index)]"
                    let nodeKeys: Set<String> = [
                        "url", "ws_url", "weight", "role", "allow_methods", "deny_methods", "max_in_flight", "headers", "compression",
                        "tls_ca_file", "tls_cert_file", "tls_key_file",
                    ]
                    guard let upstream = mapping(item, itemPath, keys: nodeKeys) else { continue }
                    guard let urlNode = upstream["url"] else { issue("\(itemPath).url", "is required"); continue }
                    guard let text = string(urlNode, "\(itemPath).url"), let url = secret(text, "\(itemPath).url") else { continue }
                    // Hosted nodes take their key in the path (…/v3/<key>): a URL written
                    // literally with such a segment is a credential in the file.
                    if text == url, Self.looksKeyed(url) { plaintextSecret("\(itemPath).url") }
                    if UpstreamNode(url: url) == nil { issue("\(itemPath).url", "must be an http:// or https:// URL without credentials") }
                    var node = NodeConfig(url: url)
                    if let v = upstream["ws_url"], let text = string(v, "\(itemPath).ws_url"), let wsURL = secret(text, "\(itemPath).ws_url") {
                        if text == wsURL, Self.looksKeyed(wsURL) { plaintextSecret("\(itemPath).ws_url") }
                        if NodeSubscriber.Endpoint(url: wsURL) == nil {
                            issue("\(itemPath).ws_url", "must be a ws:// or wss:// URL without credentials")
                        } else {
                            node.webSocketURL = wsURL
                        }
                    }
                    if let v = upstream["weight"] {
                        if let weight = v.float, weight > 0, weight.isFinite, weight <= 1_000_000 { node.weight = weight } else { issue("\(itemPath).weight", "must be a number above 0, at most 1000000") }
                    }
                    if let v = upstream["role"], let role = string(v, "\(itemPath).role") {
                        if role == "primary" || role == "fallback" { node.role = role } else { issue("\(itemPath).role", "must be primary or fallback") }
                    }
                    node.allowMethods = upstream["allow_methods"].flatMap { strings($0, "\(itemPath).allow_methods") } ?? []
                    node.denyMethods = upstream["deny_methods"].flatMap { strings($0, "\(itemPath).deny_methods") } ?? []
                    if let v = upstream["max_in_flight"] { node.maxInFlight = integer(v, "\(itemPath).max_in_flight", min: 1) }
                    if let v = upstream["compression"] { node.compression = boolean(v, "\(itemPath).compression") }
                    func file(_ key: String) -> String? {
                        guard let value = upstream[key], let text = string(value, "\(itemPath).\(key)") else { return nil }
                        if !readableFile(text) { issue("\(itemPath).\(key)", "cannot read \(text)") }
                        return text
                    }
                    node.tlsCAFile = file("tls_ca_file")
                    node.tlsCertFile = file("tls_cert_file")
                    node.tlsKeyFile = file("tls_key_file")
                    if (node.tlsCertFile == nil) != (node.tlsKeyFile == nil) {
                        issue("\(itemPath).tls_cert_file", "tls_cert_file and tls_key_file go together")
                    }
                    if node.tlsCAFile != nil || node.tlsCertFile != nil, !url.hasPrefix("https://"), !(node.webSocketURL?.hasPrefix("wss://") ?? false) {
                        issue("\(itemPath).tls_ca_file", "TLS files need an https:// url or a wss:// ws_url")
                    }
                    if let v = upstream["headers"], let headers = mapping(v, "\(itemPath).headers", keys: nil) {
                        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
                            let headerPath = "\(itemPath).headers.\(name)"
                            guard let text = string(value, headerPath), let resolved = secret(text, headerPath) else { continue }
                            if text == resolved, !text.hasPrefix("env:"), !text.hasPrefix("file:") { plaintextSecret(headerPath) }
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
                if list.count > NodeSet.capacity { issue("\(path).upstreams", "at most \(NodeSet.capacity) nodes per network") }
            } else {
                issue("\(path).upstreams", "must be a list of nodes (- url: http://…)")
            }
            networks.append(network)
        }
        if networks.isEmpty { issue("networks", "needs at least one network") }
        return networks
    }

    /// A path segment of 20 or more letters and digits (with `-` or `_`): an API key, most likely.
    static func looksKeyed(_ url: String) -> Bool {
        guard let scheme = url.range(of: "://") else { return false }
        let rest = url[scheme.upperBound...]
        guard let slash = rest.firstIndex(of: "/") else { return false }
        let path = rest[slash...].split(separator: "?", maxSplits: 1).first ?? ""
        let query = rest.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        let pieces = path.split(separator: "/") + query.split(whereSeparator: { $0 == "&" || $0 == "=" })
        return pieces.contains { piece in
            piece.count >= 20 && piece.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } && piece.contains(where: \.isNumber)
        }
    }

    /// True when `path` names a file this process may read (a CA bundle, say).
    func readableFile(_ path: String) -> Bool { access(path, R_OK) == 0 }

    /// A section's credential from `password_file` or `password: env:NAME | file:PATH`; a
    /// literal `password` is refused (and never echoed): secrets never sit in the config file.
    mutating func password(in map: [String: Node], _ path: String) -> String? {
        var found: String?
        if let value = map["password"], let text = string(value, "\(path).password") {
            if text.hasPrefix("env:") || text.hasPrefix("file:") { found = secret(text, "\(path).password") }
            else { issue("\(path).password", "must be env:NAME or file:PATH (secrets never sit in the config file); or use password_file") }
        }
        if let value = map["password_file"], let file = string(value, "\(path).password_file") {
            found = secret("file:" + file, "\(path).password_file")
        }
        return found
    }

    /// The file a section's credential comes from (`password_file`, or `password: file:PATH`),
    /// for clients that read it again on every new connection.
    func passwordFile(in map: [String: Node]) -> String? {
        if let file = map["password_file"]?.scalar?.string, !file.isEmpty { return file }
        if let text = map["password"]?.scalar?.string, text.hasPrefix("file:") { return String(text.dropFirst(5)) }
        return nil
    }

    /// A value given as `env:NAME` (from the environment) or `file:PATH` (a file's content, one
    /// trailing newline dropped), or literally. Secrets belong in the first two, never in the file.
    mutating func secret(_ text: String, _ path: String) -> String? {
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
            guard let value = SecretFile.readLine(file) else {
                issue(path, "cannot read \(file)")
                return nil
            }
            return value
        }
        return text
    }

    mutating func readBreaker(_ node: Node, _ path: String) -> CircuitBreaker.Settings {
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
}
