import CoreMetrics
import Logging
import ServiceLifecycle
import TollgateUpstream

/// Runs health-check rounds every `interval` and mirrors them into gauges.
struct HealthCheckService: Service {
    let checker: HealthChecker
    let boards: [String: NodeHealthBoard]
    let interval: Duration
    let factory: any MetricsFactory

    func run() async throws {
        while true {
            publish(await checker.checkAll())
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
        }
        await checker.close()
    }

    private func publish(_ reports: [HealthChecker.Report]) {
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
