import Logging
import Metrics
import NIOCore
import Synchronization
import TollgateCore

/// The shared (L2) response cache in Redis: `GET` and `SET … PX` of `SharedCacheCodec` values,
/// one key per answer (Cluster routes each by its own slot).
///
/// Nothing here may fail a request. A lookup that errors is a miss; after a failure the
/// replica stops asking (no task, no wait per request) and lets one lookup per
/// `probeInterval` through as a probe, like the shared limiter. Compression and
/// decompression run off the event loop, in the task that talks to Redis.
public final class RedisResponseCache: SharedResponseCache {
    let client: RedisClient
    let compressAbove: Int
    let probeInterval: Int64
    let logger: Logger
    private let available = Atomic<Bool>(true)
    private let nextProbe = Atomic<Int64>(0)
    private let clock: @Sendable () -> Int64
    private let hits: Counter
    private let misses: Counter
    private let errors: Counter
    private let stores: Counter

    public init(
        client: RedisClient, compressAbove: Int = 1024, probeInterval: Duration = .milliseconds(500), logger: Logger,
        factory: any MetricsFactory = MetricsSystem.factory, clock: @escaping @Sendable () -> Int64
    ) {
        self.client = client
        self.compressAbove = compressAbove
        self.probeInterval = probeInterval.nanoseconds
        self.logger = logger
        self.clock = clock
        let label = "tollgate_cache_shared_total"
        hits = Counter(label: label, dimensions: [("result", "hit")], factory: factory)
        misses = Counter(label: label, dimensions: [("result", "miss")], factory: factory)
        errors = Counter(label: label, dimensions: [("result", "error")], factory: factory)
        stores = Counter(label: label, dimensions: [("result", "store")], factory: factory)
    }

    public var isAvailable: Bool { available.load(ordering: .relaxed) }

    public func mayAsk(now: Int64) -> Bool {
        if available.load(ordering: .relaxed) { return true }
        // Down: one probe per interval for the whole process.
        let due = nextProbe.load(ordering: .relaxed)
        return now >= due && nextProbe.compareExchange(expected: due, desired: now + probeInterval, ordering: .relaxed).exchanged
    }

    public func fetch(network: String, key: [UInt8]) async -> SharedCacheEntry? {
        do {
            let name = SharedCacheCodec.redisKey(network: network, key: key)
            let reply = try await client.execute(["GET", .string(name)], key: name, failFast: true)
            markAvailable()
            guard case .bulkString(let value?) = reply, let entry = SharedCacheCodec.decode(value) else {
                misses.increment()
                return nil
            }
            hits.increment()
            return entry
        } catch {
            errors.increment()
            markUnavailable(error)
            return nil
        }
    }

    public func store(network: String, key: [UInt8], entry: SharedCacheEntry, ttl: Duration) {
        guard available.load(ordering: .relaxed) else { return }
        let millis = max(1, ttl.nanoseconds / 1_000_000)
        let name = SharedCacheCodec.redisKey(network: network, key: key)
        Task {
            let value = SharedCacheCodec.encode(entry, compressAbove: compressAbove)
            do {
                try await client.execute(["SET", .string(name), .bytes(value), "PX", .integer(millis)], key: name, failFast: true)
                stores.increment()
            } catch {
                errors.increment()
                markUnavailable(error)
            }
        }
    }

    private func markAvailable() {
        if available.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            logger.notice("redis reachable again: the shared response cache is back")
        }
    }

    private func markUnavailable(_ error: any Error) {
        if available.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
            nextProbe.store(clock() + probeInterval, ordering: .relaxed)
            logger.warning("redis unreachable: the shared response cache is skipped (the in-process cache still serves)",
                metadata: ["error": "\(error)"])
        }
    }
}
