import Synchronization
import TollgateCore

/// `SharedConnectionCounter` on Redis: one hash per key and kind (`tg:{k<id>}:ws` for open
/// WebSockets, `tg:{k<id>}:subs` for subscriptions), a field per replica
/// holding `count:expiresAtMillis`. A slot is taken by a script that sums the other replicas'
/// live fields with this replica's own count, so two replicas cannot both take the last slot.
/// This replica's counts are its own (a Redis that lost them gets them back at the next
/// `refresh`), and a replica that dies drops out when its fields expire (`ttlMillis`).
public final class RedisConnectionCounter: SharedConnectionCounter {
    let client: RedisClient
    let replica: String
    /// What is counted: the hash's suffix (`ws`, `subs`).
    let kind: String
    public let ttlMillis: Int64
    let nowMillis: @Sendable () -> Int64
    private let own = Mutex<[Int64: Int]>([:])

    public init(
        client: RedisClient, replica: String, kind: String = "ws", ttlMillis: Int64 = 30_000,
        nowMillis: @escaping @Sendable () -> Int64 = { WallClock.nowMillis() }
    ) {
        self.client = client
        self.replica = replica
        self.kind = kind
        self.ttlMillis = ttlMillis
        self.nowMillis = nowMillis
    }

    func key(_ keyID: Int64) -> String { "tg:{k\(keyID)}:\(kind)" }

    public func acquire(keyID: Int64, max: Int) async throws -> Bool {
        // Reserved here first: two hand-overs at once on this replica each count the other.
        let mine = own.withLock { counts -> Int in
            counts[keyID, default: 0] += 1
            return counts[keyID]! - 1
        }
        let reply: RESPValue
        do {
            reply = try await client.evaluate(
                Self.take, keys: [key(keyID)],
                arguments: [.string(replica), .integer(nowMillis()), .integer(ttlMillis), .integer(Int64(max)), .integer(Int64(mine))])
        } catch {
            unreserve(keyID)
            throw error
        }
        guard reply.int == 1 else {
            unreserve(keyID)
            return false
        }
        return true
    }

    private func unreserve(_ keyID: Int64) {
        own.withLock { counts in
            let left = Swift.max(0, counts[keyID, default: 0] - 1)
            counts[keyID] = left == 0 ? nil : left
        }
    }

    public func release(keyID: Int64) async {
        let left = own.withLock { counts -> Int in
            let left = Swift.max(0, counts[keyID, default: 0] - 1)
            counts[keyID] = left == 0 ? nil : left
            return left
        }
        try? await write(keyID: keyID, count: left)
    }

    /// Rewrites this replica's fields with a fresh expiry (every `ttlMillis / 3`).
    public func refresh() async throws {
        for (keyID, count) in own.withLock({ $0 }) { try await write(keyID: keyID, count: count) }
    }

    /// The slots this replica holds for `keyID`.
    public func held(keyID: Int64) -> Int { own.withLock { $0[keyID, default: 0] } }

    private func write(keyID: Int64, count: Int) async throws {
        let hash = self.key(keyID)
        if count == 0 {
            _ = try await client.execute(["HDEL", .string(hash), .string(replica)], key: hash, failFast: true)
        } else {
            _ = try await client.execute(["HSET", .string(hash), .string(replica), .string("\(count):\(nowMillis() + ttlMillis)")], key: hash, failFast: true)
            _ = try await client.execute(["PEXPIRE", .string(hash), .integer(ttlMillis * 2)], key: hash, failFast: true)
        }
    }

    /// ARGV: replica, now ms, ttl ms, max, this replica's count before this slot (its other
    /// reservations included). 1 when a slot was taken.
    static let take = RedisScript("""
        local now = tonumber(ARGV[2])
        local ttl = tonumber(ARGV[3])
        local total = tonumber(ARGV[5])
        local fields = redis.call('HGETALL', KEYS[1])
        for i = 1, #fields, 2 do
          if fields[i] ~= ARGV[1] then
            local sep = string.find(fields[i + 1], ':', 1, true)
            local count = tonumber(string.sub(fields[i + 1], 1, sep - 1))
            local expires = tonumber(string.sub(fields[i + 1], sep + 1))
            if expires < now then redis.call('HDEL', KEYS[1], fields[i]) else total = total + count end
          end
        end
        if total + 1 > tonumber(ARGV[4]) then return 0 end
        redis.call('HSET', KEYS[1], ARGV[1], (tonumber(ARGV[5]) + 1) .. ':' .. (now + ttl))
        redis.call('PEXPIRE', KEYS[1], ttl * 2)
        return 1
        """)
}
