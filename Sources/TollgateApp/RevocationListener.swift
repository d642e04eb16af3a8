import Logging
import ServiceLifecycle
import TollgateDataPlane
import TollgateRedis

/// Carries key revocations between replicas: `tollgate keys revoke` publishes the key's prefix
/// on the Redis channel, and every gateway subscribed here drops that key from its caches at
/// once instead of waiting out the auth cache's positive TTL. If Redis is unreachable the TTL
/// still bounds how long a revoked key keeps working.
struct RevocationListener: Service {
    let client: RedisClient
    let channel: String
    let gateway: Gateway
    let logger: Logger

    func run() async throws {
        let gateway = self.gateway, logger = self.logger
        let subscription = client.subscribe(channel) { prefix in
            guard prefix.hasPrefix("tg_"), prefix.utf8.count <= 64 else { return }
            Task {
                await gateway.invalidate(prefix: prefix)
                logger.info("key invalidated by another replica", metadata: ["key": "\(prefix)"])
            }
        }
        try? await gracefulShutdown()
        subscription.cancel()
        await client.close()
    }

    /// Tells every replica that the key with `prefix` changed.
    static func announce(prefix: String, config: RedisConfig) async throws {
        let client = RedisClient(configuration: config.clientConfiguration())
        defer { Task { await client.close() } }
        try await client.execute(["PUBLISH", .string(config.channel), .string(prefix)])
    }
}

/// The CLI's way to announce a revocation (the listener type stays internal).
public enum RedisConfigAnnouncer {
    public static func announce(prefix: String, config: RedisConfig) async throws {
        try await RevocationListener.announce(prefix: prefix, config: config)
    }
}
