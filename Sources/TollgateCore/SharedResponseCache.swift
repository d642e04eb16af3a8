import NIOCore
import Synchronization

/// Which head an answer about the moving head was true at: its number and a 64-bit digest of
/// its hash (0 when the nodes did not say). Replicas agree on it without talking to each other,
/// so a shared entry carries it instead of a replica's own epoch.
public struct ChainHead: Sendable, Hashable {
    public var number: UInt64
    public var hashTag: UInt64

    public init(number: UInt64, hashTag: UInt64) {
        self.number = number
        self.hashTag = hashTag
    }

    /// The tag of a block hash: FNV-1a over its text, case folded (0 when there is none).
    public static func tag(ofHash hash: String?) -> UInt64 {
        guard let hash else { return 0 }
        var value: UInt64 = 0xCBF2_9CE4_8422_2325
        for var byte in hash.utf8 {
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte += 32 }
            value ^= UInt64(byte)
            value &*= 0x100_0000_01B3
        }
        return value
    }
}

/// One answer in the shared (L2) response cache: the node's bytes as they came, where the `id`
/// is in them, and the head they are bound to (nil: immutable).
public struct SharedCacheEntry: Sendable, Equatable {
    public var body: ByteBuffer
    public var id: Range<Int>
    public var head: ChainHead?

    public init(body: ByteBuffer, id: Range<Int>, head: ChainHead?) {
        self.body = body
        self.id = id
        self.head = head
    }
}

/// The response cache every replica shares (Redis), behind the in-process one: a miss here
/// only means the request goes to a node, so nothing it does may fail a request. A lookup
/// never throws (a backend error is a miss) and the caller bounds how long it waits; a store
/// is fire-and-forget.
public protocol SharedResponseCache: Sendable {
    /// False while the backend is known to be down and no probe is due: the caller skips the
    /// lookup without leaving the event loop.
    func mayAsk(now: Int64) -> Bool
    /// The entry under `key` on `network`, or nil (missing, unreadable, backend away).
    func fetch(network: String, key: [UInt8]) async -> SharedCacheEntry?
    /// Keeps `entry` for `ttl`; returns at once.
    func store(network: String, key: [UInt8], entry: SharedCacheEntry, ttl: Duration)
}

/// The shared cache in memory, for tests: what several gateways in one process share.
public final class InMemorySharedResponseCache: SharedResponseCache {
    private let entries = Mutex<[String: SharedCacheEntry]>([:])
    private let counts = Mutex((fetches: 0, stores: 0))
    private let down = Atomic<Bool>(false)

    public init() {}

    public func mayAsk(now: Int64) -> Bool { true }

    public func fetch(network: String, key: [UInt8]) async -> SharedCacheEntry? {
        counts.withLock { $0.fetches += 1 }
        guard !down.load(ordering: .relaxed) else { return nil }
        return entries.withLock { $0[Self.name(network, key)] }
    }

    public func store(network: String, key: [UInt8], entry: SharedCacheEntry, ttl: Duration) {
        counts.withLock { $0.stores += 1 }
        guard !down.load(ordering: .relaxed) else { return }
        entries.withLock { $0[Self.name(network, key)] = entry }
    }

    /// Makes every lookup a miss and drops every store (a backend that is away).
    public func setDown(_ isDown: Bool) { down.store(isDown, ordering: .relaxed) }
    public var fetches: Int { counts.withLock { $0.fetches } }
    public var stores: Int { counts.withLock { $0.stores } }
    public var count: Int { entries.withLock { $0.count } }

    private static func name(_ network: String, _ key: [UInt8]) -> String { network + "\u{0}" + String(decoding: key, as: UTF8.self) }
}
