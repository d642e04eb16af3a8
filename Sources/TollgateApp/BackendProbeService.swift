import CoreMetrics
import Logging
import ServiceLifecycle
import TollgateClickHouse
import TollgateCore

/// Asks every backend the gateway depends on whether it answers, every `interval`, and
/// publishes `tollgate_backend_up{backend}` (1 or 0) for alerts and `/status`.
///
/// Backends: `keystore` (SQLite or PostgreSQL), `clickhouse` (any configured node answers),
/// and, once configured, `redis`. A down backend degrades service, it does not stop it: this is
/// how an operator learns of it.
struct BackendProbeService: Service {
    struct Probe: Sendable {
        var backend: String
        var check: @Sendable () async -> Bool
    }

    let probes: [Probe]
    let interval: Duration
    let factory: any MetricsFactory
    let logger: Logger

    func run() async throws {
        var last: [String: Bool] = [:]
        while true {
            for probe in probes {
                let up = await probe.check()
                Gauge(label: "tollgate_backend_up", dimensions: [("backend", probe.backend)], factory: factory).record(up ? 1 : 0)
                if let before = last[probe.backend], before != up {
                    logger.log(level: up ? .notice : .error, up ? "backend reachable again" : "backend unreachable", metadata: [
                        "backend": "\(probe.backend)",
                    ])
                }
                last[probe.backend] = up
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }
}
