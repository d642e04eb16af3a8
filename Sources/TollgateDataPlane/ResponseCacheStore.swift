import NIOCore
import Synchronization
import TollgateCompression
import TollgateCore

/// One shard of the in-process response cache (L1), always used under its `ResponseCacheStore`
/// lock.
///
/// Bounded in bytes; eviction is CLOCK (second chance): a hit sets the entry's bit, and when
/// room is needed the hand walks the ring, clearing set bits and evicting the first clear one;
/// new entries go just behind the hand. It keeps what is read again the way LRU does, without
/// moving anything on a hit (`bench/cache-policy` compares the two on replayed traces). An entry that lives until the next head carries the network's epoch and is dropped
/// when read under another one; every entry also has a TTL cap.
package struct ResponseCacheShard: Sendable {
    package struct Entry: Sendable {
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

        package init(body: ByteBuffer, id: Range<Int>, epoch: UInt64?, expiresAt: Int64) {
            self.body = body
            self.id = id
            self.epoch = epoch
            self.expiresAt = expiresAt
        }

        package var size: Int { body.readableBytes + (gzip?.size ?? 0) + 96 }
    }

    package let maxBytes: Int
    package private(set) var bytes = 0
    private var entries: [[UInt8]: Entry] = [:]
    /// The clock: a circular list of keys by node index (`keys`, `next`, `prev`); a new entry
    /// goes just behind the hand, so the hand reaches it last. Nothing moves on removal: a
    /// freed node is reused.
    private var keys: [[UInt8]] = []
    private var next: [Int] = []
    private var prev: [Int] = []
    private var free: [Int] = []
    private var hand = -1
    package private(set) var evictions = ResponseCacheEvictions()

    package init(maxBytes: Int) { self.maxBytes = maxBytes }

    /// The entry for `key` if it is still valid at `epoch` and `now`.
    package mutating func entry(_ key: [UInt8], epoch: UInt64, now: Int64) -> Entry? {
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

    package mutating func store(_ key: [UInt8], _ entry: Entry) {
        guard entry.size <= maxBytes / 8 else { return }  // one huge answer must not flush the rest
        var entry = entry
        if let old = entries[key] {
            bytes -= old.size
            entry.slot = old.slot
            entries[key] = entry
            bytes += entry.size
            while bytes > maxBytes, hand >= 0 { evictOne() }
            return
        }
        // Room first, then the new entry behind the hand: it is the last the hand reaches,
        // never the victim of its own arrival.
        while bytes + entry.size > maxBytes, hand >= 0 { evictOne() }
        entry.slot = insertBehindHand(key)
        entries[key] = entry
        bytes += entry.size
    }

    /// Entries held (tests check the ring against it).
    package var count: Int { entries.count }

    private mutating func insertBehindHand(_ key: [UInt8]) -> Int {
        let node: Int
        if let reused = free.popLast() {
            node = reused
            keys[node] = key
        } else {
            node = keys.count
            keys.append(key)
            next.append(node)
            prev.append(node)
        }
        if hand < 0 {
            next[node] = node
            prev[node] = node
            hand = node
        } else {
            let before = prev[hand]
            next[before] = node
            prev[node] = before
            next[node] = hand
            prev[hand] = node
        }
        return node
    }

    private mutating func evictOne() {
        let key = keys[hand]
        if var entry = entries[key], entry.referenced {
            entry.referenced = false
            entries[key] = entry
            hand = next[hand]
            return
        }
        evictions.size += 1
        remove(key)
    }

    private mutating func remove(_ key: [UInt8]) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        bytes -= entry.size
        let node = entry.slot
        if next[node] == node {
            hand = -1
        } else {
            if hand == node { hand = next[node] }
            next[prev[node]] = next[node]
            prev[next[node]] = prev[node]
        }
        keys[node] = []
        free.append(node)
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
