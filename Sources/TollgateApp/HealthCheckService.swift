import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization
import TollgateDataPlane
import TollgateUpstream

/// Runs health-check rounds every `interval` and mirrors them into gauges.
struct HealthCheckService: Service {
    /// Evictions already added to the counter (the store counts in total).
    private final class Published: Sendable { let evictions = Mutex(ResponseCacheEvictions()) }
    private let published = Published()

    /// The checker, boards and interval in force: a config reload that changes the networks
    /// installs a new checker, which the next round uses (and the old one is closed, between
    /// rounds, so no check in progress loses its connection).
    let upstreams: Upstreams
    let factory: any MetricsFactory
    /// The response cache's bytes held and evictions so far (nil: no cache), published with the
    /// health gauges so that no request pays for them.
    var cacheStats: (@Sendable () -> (bytes: Int, evictions: ResponseCacheEvictions))?

    func run() async throws {
        var checker = upstreams.current.checker
        while true {
            let topology = upstreams.current
            if topology.checker !== checker {
                await checker.close()
                checker = topology.checker
            }
            publish(await checker.checkAll(), boards: topology.boards)
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: topology.healthInterval) }
            } catch {
                break
            }
        }
        await checker.close()
    }

    private func publish(_ reports: [HealthChecker.Report], boards: [String: NodeHealthBoard]) {
        if let cacheStats {
            let stats = cacheStats()
            Gauge(label: "tollgate_cache_bytes", dimensions: [], factory: factory).record(stats.bytes)
            let published = published.evictions.withLock { published in
                defer { published = stats.evictions }
                return published
            }
            for ((reason, total), (_, before)) in zip(stats.evictions.byReason, published.byReason) where total > before {
                Counter(label: "tollgate_cache_evictions_total", dimensions: [("reason", reason)], factory: factory).increment(by: total - before)
            }
        }
        for (network, board) in boards {
            for (index, cell) in board.cells.enumerated() {
                guard let upstream = reports.first(where: { $0.network == network && $0.index == index })?.upstream else { continue }
                Gauge(label: "tollgate_circuit_state", dimensions: [("network", network), ("upstream", upstream)], factory: factory)
                    .record(cell.circuitState)
            }
        }
        for report in reports {
            if case .reorg = report.chainChange {
                Counter(label: "tollgate_reorgs_total", dimensions: [("network", report.network)], factory: factory).increment()
            }
        }
        for (network, board) in boards where board.chain.head > 0 {
            Gauge(label: "tollgate_chain_head_block", dimensions: [("network", network)], factory: factory).record(Double(board.chain.head))
            Gauge(label: "tollgate_chain_finalized_block", dimensions: [("network", network)], factory: factory)
                .record(Double(board.chain.finalized))
        }
        var poolHeads: [String: UInt64] = [:]
        for report in reports where report.healthy {
            if let head = report.head { poolHeads[report.network] = max(poolHeads[report.network] ?? 0, head) }
        }
        for report in reports {
            let labels = [("network", report.network), ("upstream", report.upstream)]
            if let head = report.head, let poolHead = poolHeads[report.network] {
                Gauge(label: "tollgate_upstream_lag_blocks", dimensions: labels, factory: factory)
                    .record(Double(poolHead > head ? poolHead - head : 0))
            }
            Gauge(label: "tollgate_upstream_healthy", dimensions: labels, factory: factory).record(report.healthy ? 1 : 0)
            if let head = report.head {
                Gauge(label: "tollgate_upstream_block_height", dimensions: labels, factory: factory).record(Double(head))
            }
        }
    }
}
