import CoreMetrics
import Logging
import ServiceLifecycle
import TollgateUpstream

/// Runs health-check rounds every `interval` and mirrors them into gauges.
struct HealthCheckService: Service {
    let checker: HealthChecker
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
        for report in reports {
            let labels = [("network", report.network), ("upstream", report.upstream)]
            Gauge(label: "tollgate_upstream_healthy", dimensions: labels, factory: factory).record(report.healthy ? 1 : 0)
            if let head = report.head {
                Gauge(label: "tollgate_upstream_block_height", dimensions: labels, factory: factory).record(Double(head))
            }
        }
    }
}
