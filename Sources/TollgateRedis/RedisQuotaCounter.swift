import TollgateCore

/// Monthly CU counters in Redis, one per key and period, expiring a day after the period ends.
///
/// Redis holds the live, cluster-wide count every replica adopts each flush; PostgreSQL (or
/// SQLite) holds the durable total. When Redis loses a counter (flush, failover without the
/// data), the next sync raises it back to the durable total instead of restarting the month.
public struct RedisQuotaCounter: SharedQuotaCounter {
    let client: RedisClient

    public init(client: RedisClient) {
        self.client = client
    }

    static func key(_ keyID: Int64, period: String) -> String { "tg:{k\(keyID)}:q:\(period)" }

    public func sync(_ deltas: [Int64: Int64], floors: [Int64: Int64], period: String) async throws -> [Int64: Int64] {
        let expireAt = BillingPeriod.end(of: period).map { $0 + 86_400 } ?? (WallClock.nowMillis() / 1000 + 40 * 86_400)
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
