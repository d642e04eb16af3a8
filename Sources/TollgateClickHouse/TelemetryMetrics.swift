import CoreMetrics

/// The telemetry pipeline's own metrics: how far behind it is and where rows went.
struct TelemetryMetrics: Sendable {
    let queueDepth: Gauge
    let spoolBytes: Gauge
    let written: Counter
    let spooled: Counter
    let replayed: Counter
    let dropped: Counter
    let corrupt: Counter
    let batchDuration: Timer
    let failures: Counter
    /// Batches found already stored before a resend (an earlier answer was lost).
    let alreadyStored: Counter

    init(factory: any MetricsFactory) {
        queueDepth = Gauge(label: "tollgate_telemetry_queue_depth", factory: factory)
        spoolBytes = Gauge(label: "tollgate_telemetry_spool_bytes", factory: factory)
        func events(_ outcome: String) -> Counter {
            Counter(label: "tollgate_telemetry_events_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        written = events("written")
        spooled = events("spooled")
        replayed = events("replayed")
        dropped = events("dropped")
        corrupt = Counter(label: "tollgate_telemetry_spool_corrupt_records_total", factory: factory)
        batchDuration = Timer(label: "tollgate_telemetry_batch_duration_seconds", factory: factory)
        failures = Counter(label: "tollgate_telemetry_insert_failures_total", factory: factory)
        alreadyStored = Counter(label: "tollgate_telemetry_batches_already_stored_total", factory: factory)
    }
}
