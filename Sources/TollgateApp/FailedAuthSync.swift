import Logging
import ServiceLifecycle
import TollgateCore
import TollgateDataPlane
import TollgateRedis

/// The failed-auth budget for the whole cluster: every `interval`, the failures this replica
/// counted per client address are added to a Redis counter per address (expiring with the
/// window); the replica whose addition reaches the budget sets the address's block in Redis
/// and publishes it on `<channel>:authblocks`, and every replica refuses the address for the
/// block's length. Each replica still blocks on its own count too, so with Redis away the
/// budget is per replica, as without Redis.
struct FailedAuthSync: Service {
    let client: RedisClient
    let channel: String
    let guarded: AuthFailureGuard
    let interval: Duration
    let clock: @Sendable () -> Int64
    let logger: Logger

    static func channel(_ base: String) -> String { base + ":authblocks" }

    func run() async throws {
        guarded.shareCounts()
        let guarded = self.guarded, clock = self.clock, logger = self.logger
        let subscription = client.subscribe(Self.channel(channel)) { message in
            let parts = message.split(separator: " ")
            guard parts.count == 2, let address = IPAddress(parts[0]), let millis = Int64(parts[1]), millis > 0 else { return }
            guarded.block(address, for: millis * 1_000_000, now: clock())
            logger.info("client address blocked by the cluster's failed-auth count", metadata: ["client": "\(address)", "block_ms": "\(millis)"])
        }
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            await publish(guarded.drainPending())
        }
        subscription.cancel()
    }

    /// Adds each address's failures to its cluster-wide count; announces the blocks that reach the budget.
    private func publish(_ pending: [IPAddress: Int]) async {
        let settings = guarded.settings
        for (address, failures) in pending {
            let text = address.description
            do {
                let blocked = try await client.evaluate(
                    Self.script, keys: ["tg:{af:\(text)}:n", "tg:{af:\(text)}:b"],
                    arguments: [.integer(Int64(failures)), .integer(max(1, settings.window / 1_000_000)),
                                .integer(Int64(settings.maxFailures)), .integer(max(1, settings.block / 1_000_000))],
                    failFast: true)
                if blocked.int == 1 {
                    _ = try await client.execute(
                        ["PUBLISH", .string(Self.channel(channel)), .string("\(text) \(max(1, settings.block / 1_000_000))")], failFast: true)
                }
            } catch {
                // Redis away: this replica's own count still blocks; these failures are not carried over.
                logger.debug("failed-auth count not shared", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    /// KEYS: the address's failure count, its block. ARGV: failures to add, window ms, budget,
    /// block ms. Returns 1 when this addition blocked the address (once per block).
    static let script = RedisScript("""
        local n = redis.call('INCRBY', KEYS[1], ARGV[1])
        if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        if n >= tonumber(ARGV[3]) and redis.call('SET', KEYS[2], '1', 'PX', ARGV[4], 'NX') then
          redis.call('DEL', KEYS[1])
          return 1
        end
        return 0
        """)
}
