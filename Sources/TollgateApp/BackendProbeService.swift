import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization
import TollgateClickHouse
import TollgateCore

/// Asks every backend the gateway depends on whether it answers, every `interval`, and
/// publishes `tollgate_backend_up{backend}` (1 or 0) for alerts, `/status` and `/readyz`.
///
/// Backends: `keystore` (SQLite or PostgreSQL), `clickhouse` (any configured node answers),
/// and, once configured, `redis`. A down backend degrades service, it does not stop it: this is
/// how an operator learns of it. Probes run side by side, each bounded by `timeout`, so one
/// backend that hangs delays neither the others' answers nor the next round.
struct BackendProbeService: Service {
    struct Probe: Sendable {
        var backend: String
        var check: @Sendable () async -> Bool
    }

    let probes: [Probe]
    let status: BackendStatus
    let interval: Duration
    let timeout: Duration
    let factory: any MetricsFactory
    let logger: Logger

    func run() async throws {
        while true {
            await withTaskGroup(of: Void.self) { group in
                for probe in probes {
                    group.addTask { await self.probe(probe) }
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
        }
    }

    private func probe(_ probe: Probe) async {
        let up = await Self.bounded(timeout) { await probe.check() } ?? false
        Gauge(label: "tollgate_backend_up", dimensions: [("backend", probe.backend)], factory: factory).record(up ? 1 : 0)
        if let before = status.record(probe.backend, up: up), before != up {
            logger.log(level: up ? .notice : .error, up ? "backend reachable again" : "backend unreachable", metadata: [
                "backend": "\(probe.backend)",
            ])
        }
    }

    /// `body`'s answer, or nil once `timeout` passes first. A probe that ignores cancellation
    /// (a driver waiting out its own connect timeout) finishes on its own, unawaited.
    static func bounded(_ timeout: Duration, _ body: @escaping @Sendable () async -> Bool) async -> Bool? {
        let slot = ContinuationSlot()
        return await withCheckedContinuation { continuation in
            slot.set(continuation)
            let work = Task { slot.resume(with: await body()) }
            Task {
                try? await Task.sleep(for: timeout)
                if slot.resume(with: nil) { work.cancel() }
            }
        }
    }
}

/// A continuation resumed by whichever of two racers comes first.
private final class ContinuationSlot: Sendable {
    private let continuation = Mutex<CheckedContinuation<Bool?, Never>?>(nil)

    func set(_ value: CheckedContinuation<Bool?, Never>) { continuation.withLock { $0 = value } }

    /// Resumes the waiter unless the other racer did; true when this call did.
    @discardableResult
    func resume(with value: Bool?) -> Bool {
        guard let waiter = continuation.withLock({ $0.take() }) else { return false }
        waiter.resume(returning: value)
        return true
    }
}
