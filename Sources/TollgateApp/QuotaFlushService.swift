import Logging
import ServiceLifecycle
import TollgateCore

/// Persists monthly usage every `interval` and once more at shutdown, after the listener has
/// drained, so no admitted request goes uncounted across a clean restart.
struct QuotaFlushService: Service {
    let ledger: QuotaLedger
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // Sleeping throws on graceful shutdown and on cancellation (another service failed):
        // either way stop looping, flush once more, and return.
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
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
