import Yams

/// The `tracing:` section. Off by default; when on, spans go to an OpenTelemetry collector
/// over OTLP/HTTP.
public struct TracingConfig: Sendable {
    public var enabled = false
    /// Share of requests without a client sampling decision that are traced.
    public var sampleRatio = 0.01
    /// The collector's OTLP/HTTP traces URL; a bare `http://host:4318` gets `/v1/traces`.
    public var otlpEndpoint = "http://127.0.0.1:4318"
    /// `http/protobuf` (the default) or `http/json`.
    public var otlpProtocol = "http/protobuf"
    public var serviceName = "tollgate"

    public init() {}

    /// The endpoint with the traces path when none was given.
    var tracesURL: String {
        let afterScheme = otlpEndpoint.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        // ["http:", "", "host:port", "path..."]
        if afterScheme.count < 4 || afterScheme[3].isEmpty {
            return (otlpEndpoint.hasSuffix("/") ? String(otlpEndpoint.dropLast()) : otlpEndpoint) + "/v1/traces"
        }
        return otlpEndpoint
    }
}

extension ConfigReader {
    mutating func readTracing(_ node: Node) -> TracingConfig {
        var tracing = TracingConfig()
        let keys: Set<String> = ["enabled", "sample_ratio", "otlp_endpoint", "otlp_protocol", "service_name"]
        guard let map = mapping(node, "tracing", keys: keys) else { return tracing }
        if let value = map["enabled"] {
            if let flag = value.bool { tracing.enabled = flag } else { issue("tracing.enabled", "must be true or false") }
        }
        if let value = map["sample_ratio"] {
            if let ratio = value.float, ratio >= 0, ratio <= 1 { tracing.sampleRatio = ratio }
            else { issue("tracing.sample_ratio", "must be a number from 0 to 1") }
        }
        if let value = map["otlp_endpoint"], let url = string(value, "tracing.otlp_endpoint") {
            if url.hasPrefix("http://") || url.hasPrefix("https://") { tracing.otlpEndpoint = url }
            else { issue("tracing.otlp_endpoint", "must be an http:// or https:// URL") }
        }
        if let value = map["otlp_protocol"], let text = string(value, "tracing.otlp_protocol") {
            if ["http/protobuf", "http/json"].contains(text) { tracing.otlpProtocol = text }
            else { issue("tracing.otlp_protocol", "must be http/protobuf or http/json") }
        }
        if let value = map["service_name"], let name = string(value, "tracing.service_name") { tracing.serviceName = name }
        return tracing
    }
}
