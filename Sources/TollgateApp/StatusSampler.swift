import ServiceLifecycle
import Synchronization
import TollgateAdmin
import TollgateDataPlane

/// Feeds the status page: reads the process's metric totals every `interval` into a
/// `TrafficHistory`, and gathers a `StatusSnapshot` (fleet, traffic, backends) when a page is
/// asked for. A `Service`, so it stops with the rest of the group.
final class StatusSampler: Service, StatusSource {
    /// The whole `/metrics` text (registry and request metrics).
    private let exposition: @Sendable () -> String
    private let fleet: StatusPage
    private let backends: BackendStatus
    private let backendNames: [String]
    private let readiness: @Sendable () -> Readiness
    private let interval: Duration
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private let history = Mutex(TrafficHistory())
    private let latest = Mutex(MetricTotals())

    init(
        exposition: @escaping @Sendable () -> String, fleet: StatusPage, backends: BackendStatus, backendNames: [String],
        readiness: @escaping @Sendable () -> Readiness, interval: Duration = .seconds(10)
    ) {
        self.exposition = exposition
        self.fleet = fleet
        self.backends = backends
        self.backendNames = backendNames
        self.readiness = readiness
        self.interval = interval
        self.start = clock.now
    }

    private var seconds: Double {
        let elapsed = clock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Reads the totals now; the service calls it every interval.
    func sample() {
        let totals = MetricTotals(exposition: exposition())
        let now = seconds
        latest.withLock { $0 = totals }
        history.withLock { $0.record(seconds: now, totals) }
    }

    func run() async throws {
        sample()
        // Graceful shutdown ends the sleep at once, not at the next sample.
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval, tolerance: .seconds(1)) }
            } catch {
                return
            }
            sample()
        }
    }

    func snapshot() async -> StatusSnapshot {
        let networks = await fleet.networks().map { network in
            StatusSnapshot.Network(name: network.name, head: network.head, nodes: network.nodes.map { node in
                StatusSnapshot.Node(
                    name: node.upstream, healthy: node.healthy && node.chainMatches, cordoned: node.cordoned, head: node.head, lag: node.lag,
                    circuit: node.circuit, latencyMillis: node.latencyMillis,
                    lastError: node.chainMatches ? node.lastError : node.lastError ?? "wrong chain id")
            })
        }
        let totals = latest.withLock { $0 }
        let now = seconds
        return StatusSnapshot(
            version: TollgateVersion.current, networks: networks, traffic: history.withLock { $0.rates(now: now) },
            backends: backendNames.map { .init(name: $0, up: backends.probed($0)) },
            telemetryQueueRows: totals.telemetryQueueRows, telemetrySpoolBytes: totals.telemetrySpoolBytes,
            degraded: readiness().degraded)
    }
}
