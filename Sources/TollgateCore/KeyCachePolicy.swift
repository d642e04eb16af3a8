/// The key directory's decisions, on plain values: whether a cached entry may be served, must
/// be refreshed in the background, or must be waited for; what a store's answer or failure
/// becomes; what to drop when full. `KeyDirectory` holds the entries, asks the store and logs;
/// this decides (`KeyCachePolicyTests` check it with the time passed in).
public struct KeyCachePolicy: Sendable {
    public let settings: KeyDirectory.Settings

    public init(settings: KeyDirectory.Settings) { self.settings = settings }

    public enum Read {
        /// Serve it: it is fresh.
        case fresh(KeyDirectory.Answer)
        /// Serve it now and refresh it in the background (a known key past its TTL, within
        /// its stale limit: stale-while-revalidate).
        case serveAndRefresh(KeyDirectory.Answer)
        /// Ask the store and wait: never seen, unknown and expired, or stale for too long.
        case fetch
    }

    /// What to do with the entry held for a key (nil: none). An entry handed out while it is
    /// refreshed is already expired, so no event loop keeps a copy of it; while the store is
    /// unreachable it is marked `stale`.
    public func read(_ entry: KeyDirectory.Answer?, now: Int64, storeReachable: Bool) -> Read {
        guard let entry else { return .fetch }
        if entry.expiresAt > now { return .fresh(entry) }
        guard case .found = entry.lookup, entry.staleUntil > now else { return .fetch }
        var held = entry
        if !storeReachable { held.source = .stale }
        return .serveAndRefresh(held)
    }

    /// The store answered: a known key lives for the positive TTL (and may be served stale up to
    /// `maxStale` past it), an unknown key for the shorter negative TTL.
    public func answer(_ lookup: KeyLookup?, now: Int64) -> KeyDirectory.Answer {
        guard let lookup else { return KeyDirectory.Answer(lookup: .notFound, expiresAt: now + settings.negativeTTL.nanoseconds) }
        let ttl = settings.positiveTTL.nanoseconds
        return KeyDirectory.Answer(lookup: lookup, expiresAt: now + ttl, staleUntil: now + ttl + settings.maxStale.nanoseconds)
    }

    /// What a failed store lookup becomes.
    public enum Fallback {
        /// The key's last known entry, served stale; retried after at most a second.
        case stale(KeyDirectory.Answer)
        /// Serve the unknown key under the anonymous plan until `expiresAt`.
        case anonymous(plan: String, expiresAt: Int64)
        /// Refuse (503): fail closed.
        case unavailable(KeyDirectory.Answer)
    }

    public func fallback(last: KeyDirectory.Answer?, now: Int64, knownPlans: Set<String>) -> Fallback {
        let retry = min(settings.positiveTTL, .seconds(1)).nanoseconds
        if let last, case .found = last.lookup, last.staleUntil > now {
            var stale = last
            stale.source = .stale
            stale.expiresAt = min(now + retry, last.staleUntil)
            return .stale(stale)
        }
        if let name = settings.anonymousPlan, knownPlans.contains(name) {
            return .anonymous(plan: name, expiresAt: now + retry)
        }
        return .unavailable(KeyDirectory.Answer(lookup: .unavailable, expiresAt: now))
    }

    /// Whether an answer is worth keeping (an `unavailable` refusal expires at once).
    public func isCacheable(_ answer: KeyDirectory.Answer, now: Int64) -> Bool { answer.expiresAt > now }

    /// Drops expired entries (keeping ones still servable stale), then, if still full, an
    /// arbitrary tenth: bounded memory under a flood of random keys matters more than perfect
    /// retention.
    public func evict<Key: Hashable>(_ entries: inout [Key: KeyDirectory.Answer], now: Int64) {
        guard entries.count >= settings.maxEntries else { return }
        entries = entries.filter { $0.value.expiresAt > now || $0.value.staleUntil > now }
        guard entries.count >= settings.maxEntries else { return }
        for key in Array(entries.keys.prefix(settings.maxEntries / 10 + 1)) { entries.removeValue(forKey: key) }
    }
}
