import Logging
import ServiceLifecycle
import TollgateDataPlane
import TollgatePostgres

/// Revocations and plan changes from PostgreSQL itself: the store announces each change with
/// `NOTIFY` in the statement that makes it, and every replica listening here drops the key
/// from its caches. Works without Redis; with Redis both channels deliver, and the second
/// delivery only costs one extra store lookup. Follows the primary across a failover.
struct KeyChangeFeed: Service {
    let cluster: PostgresCluster
    let gateway: Gateway
    let logger: Logger

    func run() async throws {
        let gateway = self.gateway, logger = self.logger
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await cluster.listen(PostgresKeyStore.changeChannel) { prefix in
                        guard prefix.hasPrefix("tg_"), prefix.utf8.count <= 64 else { return }
                        Task {
                            await gateway.invalidate(prefix: prefix)
                            logger.info("key changed in the store", metadata: ["key": "\(prefix)"])
                        }
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.debug("key change feed interrupted, listening again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}
