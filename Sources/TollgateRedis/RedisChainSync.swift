import TollgateCore

/// What replicas tell each other about each network's chain through Redis: the highest head
/// any of them answered (so a client balanced across replicas never sees `eth_blockNumber`
/// go back), and reorgs (so every replica drops what it cached about the old branch as soon
/// as one replica's nodes show the new one, not at its own next health check).
public struct RedisChainSync: Sendable {
    public let client: RedisClient
    /// Where reorgs are announced: `<network> <replica>` per message.
    public let channel: String
    /// This replica's name in announcements (it ignores its own).
    public let replica: String
    /// How long a network's shared heads live once no replica offers any (all stopped).
    public let headTTL: Duration

    public init(client: RedisClient, channel: String = "tollgate:reorgs", replica: String, headTTL: Duration = .seconds(30)) {
        self.client = client
        self.channel = channel
        self.replica = replica
        self.headTTL = headTTL
    }

    static func key(_ network: String) -> String { "tollgate:head:{" + network + "}" }

    /// What Redis holds of a network's head, in Redis's own clock (microseconds).
    public struct Heads: Sendable, Equatable {
        /// Redis's `TIME` when it answered.
        public var now: Int64
        /// The highest head every replica may answer now.
        public var released: UInt64
        /// Higher heads, each with the instant from which it may be answered.
        public var upcoming: [(number: UInt64, releaseAt: Int64)]

        public static func == (lhs: Heads, rhs: Heads) -> Bool {
            lhs.now == rhs.now && lhs.released == rhs.released && lhs.upcoming.elementsEqual(rhs.upcoming) { $0 == $1 }
        }
    }

    /// Offers this replica's head and reads back what every replica may answer, and when.
    /// A head higher than any offered before gets Redis's current time; it is released
    /// `delay` later, by which time every replica (asking more often than that) knows it, so
    /// they all start answering it at the same instant and a client balanced across them never
    /// sees it go back.
    public func share(network: String, head: UInt64, delay: Duration) async throws -> Heads {
        let reply = try await client.evaluate(
            Self.offer, keys: [Self.key(network)],
            arguments: [
                .string(String(head)), .integer(max(1, headTTL.nanoseconds / 1_000_000)), .integer(max(1, delay.nanoseconds / 1_000)),
            ],
            failFast: true)
        guard let heads = Self.heads(reply, delay: delay) else { throw RedisError.unavailable("unexpected head reply \(reply)") }
        return heads
    }

    static func heads(_ reply: RESPValue, delay: Duration) -> Heads? {
        guard let items = reply.elements, items.count >= 2, items.count % 2 == 0, let now = items[0].string.flatMap({ Int64($0) }),
            let released = items[1].string.flatMap({ UInt64($0) })
        else { return nil }
        var upcoming: [(number: UInt64, releaseAt: Int64)] = []
        let wait = delay.nanoseconds / 1_000
        var index = 2
        while index < items.count {
            guard let number = items[index].string.flatMap({ UInt64($0) }), let at = items[index + 1].string.flatMap({ Int64($0) }) else {
                return nil
            }
            upcoming.append((number, at + wait))
            index += 2
        }
        return Heads(now: now, released: released, upcoming: upcoming.sorted { $0.number < $1.number })
    }

    /// Tells the other replicas that `network` reorganised.
    public func announceReorg(network: String) async throws {
        try await client.execute(["PUBLISH", .string(channel), .string(network + " " + replica)], failFast: true)
    }

    /// Calls `onReorg` with the network each other replica's announcement names.
    public func subscribe(onReorg: @escaping @Sendable (String) -> Void) -> RedisSubscription {
        let me = replica
        return client.subscribe(channel) { message in
            guard let network = Self.network(ofAnnouncement: message, ignoring: me) else { return }
            onReorg(network)
        }
    }

    /// The network an announcement names, or nil for this replica's own or a malformed one.
    static func network(ofAnnouncement message: String, ignoring me: String) -> String? {
        let parts = message.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[1] != me, !parts[0].isEmpty else { return nil }
        return String(parts[0])
    }

    /// KEYS[1] a hash: `max` (the highest head offered), `rel` (the highest released), and one
    /// field per upcoming head holding the time it was first offered. ARGV: the head offered,
    /// the key's TTL in ms, the release delay in µs. Only ever raises, so replicas racing
    /// cannot lower it; a head first offered later than a higher one never exists, so release
    /// times rise with the heads. Returns {now, released, head, offered at, …}.
    static let offer = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local delay = tonumber(ARGV[3])
        local top = tonumber(redis.call('HGET', KEYS[1], 'max') or '0')
        local mine = tonumber(ARGV[1])
        if mine > top then
          redis.call('HSET', KEYS[1], 'max', ARGV[1], ARGV[1], string.format('%.0f', now))
        end
        local released = tonumber(redis.call('HGET', KEYS[1], 'rel') or '0')
        local out = {string.format('%.0f', now), ''}
        local fields = redis.call('HGETALL', KEYS[1])
        for i = 1, #fields, 2 do
          local name = fields[i]
          if name ~= 'max' and name ~= 'rel' then
            local at = tonumber(fields[i + 1])
            if at + delay <= now then
              if tonumber(name) > released then released = tonumber(name) end
              redis.call('HDEL', KEYS[1], name)
            else
              table.insert(out, name)
              table.insert(out, fields[i + 1])
            end
          end
        end
        out[2] = string.format('%.0f', released)
        redis.call('HSET', KEYS[1], 'rel', out[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return out
        """)
}
