import TollgateCore

/// Monthly CU counters in Redis, one per key and period, expiring a day after the period ends.
///
/// Redis holds the live, cluster-wide count every replica adopts each flush; PostgreSQL (or
/// SQLite) holds the durable total. When Redis loses a counter (flush, failover without the
/// data), the next sync raises it back to the durable total instead of restarting the month.
///
/// A flush for a period whose counter has already expired (a replica that was down or cut off
/// from Redis for more than a day after the month ended) is not written: no replica admits
/// against a closed month, and Redis would delete the key as soon as it was set. Those units
/// are in the durable store, which is where billing reads them.
public struct RedisQuotaCounter: SharedQuotaCounter {
    let client: RedisClient
    let nowSeconds: @Sendable () -> Int64

    /// How long a period's counter outlives the period, for flushes that straddle its end.
    public static let grace: Int64 = 86_400

    /// - Parameter nowSeconds: Unix time, injected for tests; Redis expires keys by its own clock.
    public init(client: RedisClient, nowSeconds: @escaping @Sendable () -> Int64 = { WallClock.nowMillis() / 1000 }) {
        self.client = client
        self.nowSeconds = nowSeconds
    }

    static func key(_ keyID: Int64, period: String) -> String { "tg:{k\(keyID)}:q:\(period)" }

    /// The Unix second `period`'s counter expires at (malformed periods get 40 days from now).
    public func expiry(of period: String) -> Int64 {
        BillingPeriod.end(of: period).map { $0 + Self.grace } ?? (nowSeconds() + 40 * 86_400)
    }

    public func sync(_ deltas: [Int64: Int64], floors: [Int64: Int64], period: String) async throws -> [Int64: Int64] {
        let expireAt = expiry(of: period)
        guard expireAt > nowSeconds() else { return [:] }
        return try await withThrowingTaskGroup(of: (Int64, Int64).self) { group in
            for (keyID, delta) in deltas {
                group.addTask {
                    let reply = try await client.evaluate(
                        Self.script, keys: [Self.key(keyID, period: period)],
                        arguments: [.integer(delta), .integer(floors[keyID] ?? 0), .integer(expireAt)])
                    guard let total = reply.int else { throw RedisError.unavailable("unexpected quota reply \(reply)") }
                    return (keyID, total)
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
    }

    public func current(keyID: Int64, period: String) async throws -> Int64? {
        let reply = try await client.execute(["GET", .string(Self.key(keyID, period: period))], key: Self.key(keyID, period: period))
        return reply.isNull ? nil : reply.string.flatMap { Int64($0) }
    }

    static let script = RedisScript("""
        local v = redis.call('INCRBY', KEYS[1], ARGV[1])
        local floor = tonumber(ARGV[2])
        if v < floor then
          redis.call('SET', KEYS[1], floor)
          v = floor
        end
        redis.call('EXPIREAT', KEYS[1], ARGV[3])
        return v
        """)
}
