/// Sums of the process's own metrics, read from its Prometheus text exposition.
///
/// The status page wants a handful of totals every few seconds; reading them from the registry's
/// text keeps the data path free of a second set of counters to bump per request.
struct MetricTotals: Sendable, Equatable {
    var requests: Double = 0
    /// Answers with a 5xx status.
    var errors: Double = 0
    var rateLimited: Double = 0
    var cacheHits: Double = 0
    var cacheLookups: Double = 0
    var telemetryQueueRows: Double?
    var telemetrySpoolBytes: Double?

    init() {}

    /// Lines are `name{label="value",...} number` or `name number`; comments and others are skipped.
    init(exposition text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let series = line[..<space]
            let name = series.prefix { $0 != "{" }
            switch name {
            case "tollgate_requests_total":
                requests += value
                if let status = Self.label("status", in: series), status.hasPrefix("5") { errors += value }
            case "tollgate_ratelimit_rejections_total":
                rateLimited += value
            case "tollgate_cache_requests_total":
                let result = Self.label("result", in: series)
                if result == "hit" { cacheHits += value }
                if result == "hit" || result == "miss" { cacheLookups += value }
            case "tollgate_telemetry_queue_depth":
                telemetryQueueRows = (telemetryQueueRows ?? 0) + value
            case "tollgate_telemetry_spool_bytes":
                telemetrySpoolBytes = (telemetrySpoolBytes ?? 0) + value
            default:
                continue
            }
        }
    }

    /// The value of `name="..."` in a series' labels (values here never hold quotes).
    static func label(_ name: String, in series: Substring) -> Substring? {
        guard let start = series.range(of: "\(name)=\"") else { return nil }
        let rest = series[start.upperBound...]
        return rest.prefix { $0 != "\"" }
    }
}
