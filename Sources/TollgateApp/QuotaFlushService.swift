import Logging
import ServiceLifecycle
import TollgateCore

/// Persists monthly usage every `interval`, sooner when a key's cell has counted a slice of its
/// quota (`QuotaCell`: so replicas learn of each other's spending in step with the quota, not
/// the clock), and once more at shutdown, after the listener has drained, so no admitted request
/// goes uncounted across a clean restart.
struct QuotaFlushService: Service {
    let ledger: QuotaLedger
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // The wait ends early on graceful shutdown and on cancellation (another service failed):
        // either way stop looping, flush once more, and return.
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            _ = await cancelWhenGracefulShutdown { await ledger.flushSignal.wait(timeout: interval) }
            if Task.isCancelled || Task.isShuttingDownGracefully { break }
            await flush()
        }
        await flush()
    }

    private func flush() async {
        do {
            try await ledger.flush()
        } catch {
            logger.warning("usage flush failed; will retry", metadata: ["error": "\(error)"])
        }
    }
}
