import NIOCore

/// A small per-loop front for the shared response cache: a hit here takes no lock and touches
/// nothing another loop uses. Entries come from the shared store on a hit there (so a key is
/// still missed once per process, not once per loop) and are checked by the same rules (TTL,
/// the network's epoch); a front that fills is emptied, its entries still being in the store.
/// An entry stays here at most `lifetime` (1 s): a hot key then reaches the shared store about
/// once a second per loop, which keeps its CLOCK bit set there (a front hit cannot set it
/// without the lock this front avoids). Loop-confined, like the rest of `LoopState`.
final class CacheFront {
    private var entries: [[UInt8]: ResponseCacheShard.Entry] = [:]
    private var bytes = 0
    static let lifetime: Int64 = 1_000_000_000

    /// The entry if it is still valid at `epoch` and `now`; an invalid one is dropped.
    func entry(_ key: [UInt8], epoch: UInt64, now: Int64) -> ResponseCacheShard.Entry? {
        guard let entry = entries[key] else { return nil }
        if entry.expiresAt <= now || (entry.epoch != nil && entry.epoch != epoch) {
            bytes -= entry.size
            entries[key] = nil
            return nil
        }
        return entry
    }

    /// Keeps an entry the shared store answered at `now`, within `maxBytes` for this loop.
    func keep(_ key: [UInt8], _ entry: ResponseCacheShard.Entry, maxBytes: Int, now: Int64) {
        guard entry.size <= maxBytes / 8 else { return }
        var entry = entry
        entry.expiresAt = min(entry.expiresAt, now &+ Self.lifetime)
        if let old = entries[key] { bytes -= old.size }
        if bytes + entry.size > maxBytes {
            entries.removeAll(keepingCapacity: true)
            bytes = 0
        }
        entries[key] = entry
        bytes += entry.size
    }

    var count: Int { entries.count }
}
