import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore

/// Persists monthly usage every `interval`, sooner when a key's cell has counted a slice of its
/// quota (`QuotaCell`: so replicas learn of each other's spending in step with the quota, not
/// the clock), and once more at shutdown, after the listener has drained, so no admitted request
/// goes uncounted across a clean restart.
struct QuotaFlushService: Service {
    let ledger: QuotaLedger
    let interval: Duration
    let logger: Logger
    /// A round still running after this is logged as stalled, once a minute, until it ends:
    /// usage this replica counts is then reaching neither the store nor the other replicas.
    var stallAfter: Duration = .seconds(30)

    func run() async throws {
        let started = RoundStart()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await watch(started) }
            // The wait ends early on graceful shutdown and on cancellation (another service failed):
            // either way stop looping, flush once more, and return.
            while !Task.isCancelled, !Task.isShuttingDownGracefully {
                _ = await cancelWhenGracefulShutdown { await ledger.flushSignal.wait(timeout: interval) }
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                await flush(started)
            }
            await flush(started)
            group.cancelAll()
        }
    }

    private func flush(_ started: RoundStart) async {
        started.set(.now)
        defer { started.set(nil) }
        do {
            try await ledger.flush()
        } catch {
            logger.warning("usage flush failed; will retry", metadata: ["error": "\(error)", "unconfirmed_batches": "\(ledger.unconfirmedBatches)"])
        }
    }

    private func watch(_ started: RoundStart) async {
        var warned: ContinuousClock.Instant?
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard let since = started.get(), since.duration(to: .now) > stallAfter else { warned = nil; continue }
            if let warned, warned.duration(to: .now) < .seconds(60) { continue }
            warned = .now
            logger.error("usage flush stalled: one round has run too long; usage is not being persisted", metadata: [
                "running_for": "\(since.duration(to: .now))", "unconfirmed_batches": "\(ledger.unconfirmedBatches)",
            ])
        }
    }
}

/// When the running flush round began (nil between rounds), for the stall watch.
private final class RoundStart: Sendable {
    private let instant = Mutex<ContinuousClock.Instant?>(nil)
    func set(_ value: ContinuousClock.Instant?) { instant.withLock { $0 = value } }
    func get() -> ContinuousClock.Instant? { instant.withLock { $0 } }
}
