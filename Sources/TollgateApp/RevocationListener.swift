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

    /// Tells every replica that the keys with these prefixes changed, on one connection.
    static func announce(prefixes: [String], config: RedisConfig) async throws {
        guard !prefixes.isEmpty else { return }
        let client = RedisClient(configuration: config.clientConfiguration())
        defer { Task { await client.close() } }
        for prefix in prefixes { try await client.execute(["PUBLISH", .string(config.channel), .string(prefix)]) }
    }
}

/// How a key change reaches the other replicas, for the CLI and the admin API alike: PostgreSQL
/// announces it itself (NOTIFY in the same statement); otherwise it is published on Redis when
/// configured; without either, replicas see it within the auth cache TTL.
public enum KeyChangeAnnouncer {
    public enum Outcome: Sendable {
        case postgres
        case redis
        case redisUnreachable(String)
        /// The embedded shape: one replica, nothing to tell.
        case nobody
    }

    public static func announce(prefix: String, config: TollgateConfig) async -> Outcome {
        await announce(prefixes: [prefix], config: config)
    }

    public static func announce(prefixes: [String], config: TollgateConfig) async -> Outcome {
        guard let redis = config.redis else { return config.store.postgres == nil ? .nobody : .postgres }
        do {
            try await RevocationListener.announce(prefixes: prefixes, config: redis)
            return .redis
        } catch {
            return .redisUnreachable("\(error)")
        }
    }
}

/// A revocation published on Redis alone (tests; the listener type stays internal).
public enum RedisConfigAnnouncer {
    public static func announce(prefix: String, config: RedisConfig) async throws {
        try await RevocationListener.announce(prefixes: [prefix], config: config)
    }
}
