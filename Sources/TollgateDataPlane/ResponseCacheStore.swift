import NIOCore
import Synchronization
import TollgateCompression
import TollgateCore

/// One shard of the in-process response cache (L1), always used under its `ResponseCacheStore`
/// lock.
///
/// Bounded in bytes; eviction is CLOCK (second chance): a hit sets the entry's bit, and when
/// room is needed the hand walks the entries in insertion order, clearing set bits and evicting
/// the first clear one. It keeps what is read again the way LRU does, without moving anything
/// on a hit. An entry that lives until the next head carries the network's epoch and is dropped
/// when read under another one; every entry also has a TTL cap.
struct ResponseCacheShard: Sendable {
    struct Entry: Sendable {
        /// The node's answer as it came, and where its `id` is in it (spliced per caller).
        var body: ByteBuffer
        var id: Range<Int>
        /// The network's epoch it is valid in; nil: immutable.
        var epoch: UInt64?
        var expiresAt: Int64
        var referenced = false
        /// Its place in the clock's ring.
        var slot = 0
        /// The answer's gzip form, for answers worth compressing (`server.compress_min_bytes`).
        var gzip: GzipMember?

        var size: Int { body.readableBytes + (gzip?.size ?? 0) + 96 }
    }

    let maxBytes: Int
    private(set) var bytes = 0
    private var entries: [[UInt8]: Entry] = [:]
    private var ring: [[UInt8]] = []
    private var hand = 0
    private(set) var evictions = ResponseCacheEvictions()

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    /// The entry for `key` if it is still valid at `epoch` and `now`.
    mutating func entry(_ key: [UInt8], epoch: UInt64, now: Int64) -> Entry? {
        guard var entry = entries[key] else { return nil }
        if entry.expiresAt <= now {
            evictions.expired += 1
            remove(key)
            return nil
        }
        if entry.epoch != nil && entry.epoch != epoch {
            evictions.head += 1
            remove(key)
            return nil
        }
        if !entry.referenced {
            entry.referenced = true
            entries[key] = entry
        }
        return entry
    }

    mutating func store(_ key: [UInt8], _ entry: Entry) {
        guard entry.size <= maxBytes / 8 else { return }  // one huge answer must not flush the rest
        var entry = entry
        if let old = entries[key] {
            bytes -= old.size
            entry.slot = old.slot
        } else {
            entry.slot = ring.count
            ring.append(key)
        }
        entries[key] = entry
        bytes += entry.size
        while bytes > maxBytes, !ring.isEmpty { evictOne() }
    }

    private mutating func evictOne() {
        if hand >= ring.count { hand = 0 }
        let key = ring[hand]
        if var entry = entries[key], entry.referenced {
            entry.referenced = false
            entries[key] = entry
            hand += 1
            return
        }
        evictions.size += 1
        remove(key)
    }

    private mutating func remove(_ key: [UInt8]) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        bytes -= entry.size
        // Swap-remove from the ring, telling the entry that moved where it is now.
        let last = ring.count - 1
        if entry.slot != last {
            let moved = ring[last]
            ring[entry.slot] = moved
            entries[moved]?.slot = entry.slot
        }
        ring.removeLast()
    }
}

/// Entries the in-process cache dropped so far, by why: room was needed (`size`), their TTL
/// passed (`expired`), or the head they were about moved or reorganised (`head`). Dropped when
/// next read, so an entry nobody asks for again is counted when room is needed.
public struct ResponseCacheEvictions: Sendable, Equatable {
    public var size = 0
    public var expired = 0
    public var head = 0

    public init() {}

    mutating func add(_ other: ResponseCacheEvictions) {
        size += other.size
        expired += other.expired
        head += other.head
    }

    /// By `reason` label, for the counter.
    public var byReason: [(String, Int)] { [("size", size), ("expired", expired), ("head", head)] }
}

/// The in-process response cache shared by every event loop, in shards by key hash, each
/// behind its own lock: a hit takes one uncontended lock for a dictionary lookup. (One cache
/// per loop would need no lock, but with N loops each key must be missed N times, and a client
/// whose connections land on different loops would see fewer hits.)
public final class ResponseCacheStore: Sendable {
    private final class Locked: Sendable {
        let state: Mutex<ResponseCacheShard>
        init(maxBytes: Int) { state = Mutex(ResponseCacheShard(maxBytes: maxBytes)) }
        func withLock<T: Sendable>(_ body: (inout ResponseCacheShard) -> T) -> T { state.withLock { body(&$0) } }
    }

    private let shards: [Locked]

    public init(maxBytes: Int, shards count: Int = 16) {
        let per = max(1 << 16, maxBytes / count)
        shards = (0..<count).map { _ in Locked(maxBytes: per) }
    }

    /// FNV-1a over the key picks the shard: cheaper than a second seeded `Hasher` pass (the
    /// dictionary inside hashes the key again, with its own seed, so flooding one shard does
    /// not make its lookups slow).
    private func shard(_ key: [UInt8]) -> Locked {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in key {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01B3
        }
        return shards[Int(hash % UInt64(shards.count))]
    }

    func entry(_ key: [UInt8], epoch: UInt64, now: Int64) -> ResponseCacheShard.Entry? {
        shard(key).withLock { $0.entry(key, epoch: epoch, now: now) }
    }

    func store(_ key: [UInt8], _ entry: ResponseCacheShard.Entry) {
        shard(key).withLock { $0.store(key, entry) }
    }

    /// Bytes held and entries evicted, for metrics.
    public var bytes: Int { shards.reduce(0) { total, shard in total + shard.withLock { $0.bytes } } }
    public var evictions: ResponseCacheEvictions {
        shards.reduce(into: ResponseCacheEvictions()) { total, shard in total.add(shard.withLock { $0.evictions }) }
    }
}
