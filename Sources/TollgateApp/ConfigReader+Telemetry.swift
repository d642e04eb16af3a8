import TollgateClickHouse
import Yams

extension ConfigReader {
    mutating func readTelemetry(_ node: Node) -> TelemetryConfig {
        var telemetry = TelemetryConfig()
        let keys: Set<String> = ["clickhouse", "spool_dir", "spool_max_bytes", "spool_segment_bytes", "spool_fsync", "access_log"]
        guard let map = mapping(node, "telemetry", keys: keys) else { return telemetry }
        if let value = map["clickhouse"] { telemetry.clickhouse = readClickHouse(value) }
        if let value = map["spool_dir"], let dir = string(value, "telemetry.spool_dir") { telemetry.spoolDir = dir }
        if let value = map["spool_max_bytes"], let n = integer(value, "telemetry.spool_max_bytes", min: 4096) { telemetry.spoolMaxBytes = n }
        if let value = map["spool_segment_bytes"], let n = integer(value, "telemetry.spool_segment_bytes", min: 1024) { telemetry.spoolSegmentBytes = n }
        if let value = map["spool_fsync"], let text = string(value, "telemetry.spool_fsync") {
            if let policy = DiskSpool.FsyncPolicy(rawValue: text) { telemetry.spoolFsync = policy }
            else { issue("telemetry.spool_fsync", "must be always, segment or never") }
        }
        if let value = map["access_log"] {
            if case .scalar(let scalar) = value, ["", "off", "null", "false"].contains(scalar.string) {
                telemetry.accessLog = nil
            } else if let text = string(value, "telemetry.access_log") {
                telemetry.accessLog = text
            }
        }
        return telemetry
    }

    private mutating func readClickHouse(_ node: Node) -> ClickHouseConfig? {
        let path = "telemetry.clickhouse"
        let keys: Set<String> = [
            "urls", "database", "table", "user", "password", "password_file", "batch_rows", "flush_interval_ms", "queue_rows",
            "timeout_ms", "max_attempts", "backoff_ms", "backoff_max_ms", "client_ip", "client_ip_salt", "tls_ca_file", "tls_cert_file",
            "tls_key_file",
        ]
        guard let map = mapping(node, path, keys: keys) else { return nil }
        guard let urlsNode = map["urls"] else {
            issue("\(path).urls", "is required (the HTTP interface, e.g. http://127.0.0.1:8123)")
            return nil
        }
        let urls = strings(urlsNode, "\(path).urls") ?? []
        for (index, url) in urls.enumerated() where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            issue("\(path).urls[\(index)]", "must be an http:// or https:// URL")
        }
        if urls.isEmpty { issue("\(path).urls", "needs at least one URL") }
        var config = ClickHouseConfig(urls: urls)
        for name in ["database", "table"] {
            guard let value = map[name], let text = string(value, "\(path).\(name)") else { continue }
            guard Self.isIdentifier(text) else {
                issue("\(path).\(name)", "must be letters, digits and underscores")
                continue
            }
            if name == "database" { config.database = text } else { config.table = text }
        }
        if let value = map["user"], let user = string(value, "\(path).user") { config.user = user }
        if let password = password(in: map, path) { config.password = password }
        config.passwordFile = passwordFile(in: map)
        for (key, field) in [("tls_ca_file", \ClickHouseConfig.tlsCAFile), ("tls_cert_file", \.tlsCertFile), ("tls_key_file", \.tlsKeyFile)] {
            guard let value = map[key], let file = string(value, "\(path).\(key)") else { continue }
            if readableFile(file) { config[keyPath: field] = file } else { issue("\(path).\(key)", "cannot read \(file)") }
        }
        if (map["tls_cert_file"] == nil) != (map["tls_key_file"] == nil) { issue("\(path).tls_cert_file", "tls_cert_file and tls_key_file go together") }
        if config.password != nil, config.user == nil { config.user = "default" }
        func int(_ key: String, min: Int, _ apply: (inout ClickHouseConfig, Int) -> Void) {
            if let value = map[key], let n = integer(value, "\(path).\(key)", min: min) { apply(&config, n) }
        }
        int("batch_rows", min: 1) { $0.batchRows = $1 }
        int("flush_interval_ms", min: 10) { $0.flushIntervalMillis = $1 }
        int("queue_rows", min: 1) { $0.queueRows = $1 }
        int("timeout_ms", min: 1) { $0.timeoutMillis = $1 }
        int("max_attempts", min: 1) { $0.maxAttempts = $1 }
        int("backoff_ms", min: 1) { $0.backoffMillis = $1 }
        int("backoff_max_ms", min: 1) { $0.backoffMaxMillis = $1 }
        if let value = map["client_ip"], let text = string(value, "\(path).client_ip") {
            if let mode = ClickHouseSettings.ClientIPMode(rawValue: text) { config.clientIP = mode }
            else { issue("\(path).client_ip", "must be hashed, plain or omit") }
        }
        if let value = map["client_ip_salt"], let text = string(value, "\(path).client_ip_salt") {
            if let salt = secret(text, "\(path).client_ip_salt") { config.clientIPSalt = salt }
        }
        if config.queueRows < config.batchRows { issue("\(path).queue_rows", "must be at least batch_rows (\(config.batchRows))") }
        return config
    }

    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 128 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
