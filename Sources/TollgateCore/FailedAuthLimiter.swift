/// Brute-force protection: a client address that presents too many unknown or malformed keys
/// in a window is refused (429) for a while, without its guesses reaching the key store.
///
/// A pure value: events in (a failure, a check), decisions out, time passed in as nanoseconds
/// of the process's monotonic clock. It tracks at most `capacity` addresses; past that, idle
/// entries are swept and, if the table is still full, a new address is not tracked (blocked
/// ones always stay), so a flood of spoofed addresses cannot grow memory without bound.
public struct FailedAuthLimiter: Sendable {
    public struct Settings: Sendable, Equatable {
        /// Failures within `window` that block the address.
        public var maxFailures: Int
        public var window: Int64
        /// How long a blocked address is refused.
        public var block: Int64
        public var capacity: Int

        public init(maxFailures: Int = 100, windowNanos: Int64 = 60_000_000_000, blockNanos: Int64 = 300_000_000_000, capacity: Int = 100_000) {
            self.maxFailures = maxFailures
            self.window = windowNanos
            self.block = blockNanos
            self.capacity = capacity
        }
    }

    struct Entry {
        var windowStart: Int64
        var failures: Int
        /// 0 when not blocked.
        var blockedUntil: Int64
    }

    public let settings: Settings
    private var entries: [IPAddress: Entry] = [:]
    /// Addresses blocked at the last count; 0 lets callers skip the check entirely.
    public private(set) var blocked = 0
    /// The earliest `blockedUntil` among blocked entries (when `blocked` may next fall).
    private var nextUnblock = Int64.max

    public init(settings: Settings) {
        self.settings = settings
    }

    public enum Failure: Equatable, Sendable {
        /// Counted; not blocked (yet).
        case counted(Int)
        /// This failure blocked the address until the given instant.
        case blocked(until: Int64)
        /// Already blocked (a request that got through before the block, answered late).
        case alreadyBlocked
        /// The table is full: not tracked.
        case untracked
    }

    /// An unknown or malformed key from `address`.
    public mutating func failed(_ address: IPAddress, now: Int64) -> Failure {
        sweepIfDue(now: now)
        if var entry = entries[address] {
            if entry.blockedUntil > now { return .alreadyBlocked }
            if entry.blockedUntil != 0 || now - entry.windowStart >= settings.window {
                entry = Entry(windowStart: now, failures: 0, blockedUntil: 0)
            }
            entry.failures += 1
            if entry.failures >= settings.maxFailures {
                entry.blockedUntil = now + settings.block
                entries[address] = entry
                blocked += 1
                nextUnblock = min(nextUnblock, entry.blockedUntil)
                return .blocked(until: entry.blockedUntil)
            }
            entries[address] = entry
            return .counted(entry.failures)
        }
        if entries.count >= settings.capacity {
            sweep(now: now)
            if entries.count >= settings.capacity { return .untracked }
        }
        if settings.maxFailures <= 1 {
            entries[address] = Entry(windowStart: now, failures: 1, blockedUntil: now + settings.block)
            blocked += 1
            nextUnblock = min(nextUnblock, now + settings.block)
            return .blocked(until: now + settings.block)
        }
        entries[address] = Entry(windowStart: now, failures: 1, blockedUntil: 0)
        return .counted(1)
    }

    /// A block decided elsewhere (the cluster-wide count of another replica's failures): the
    /// address is refused until `until`, or longer if it already is. Blocked addresses are
    /// always tracked, as they are when blocked here.
    public mutating func block(_ address: IPAddress, until: Int64, now: Int64) {
        guard until > now else { return }
        sweepIfDue(now: now)
        var entry = entries[address] ?? Entry(windowStart: now, failures: 0, blockedUntil: 0)
        if entry.blockedUntil <= now { blocked += 1 }
        entry.blockedUntil = max(entry.blockedUntil, until)
        entries[address] = entry
        nextUnblock = min(nextUnblock, entry.blockedUntil)
    }

    /// Nanoseconds until `address` may try again, or nil when it is not blocked.
    public mutating func blockedFor(_ address: IPAddress, now: Int64) -> Int64? {
        sweepIfDue(now: now)
        guard let entry = entries[address], entry.blockedUntil > now else { return nil }
        return entry.blockedUntil - now
    }

    public var tracked: Int { entries.count }

    private mutating func sweepIfDue(now: Int64) {
        if now >= nextUnblock { sweep(now: now) }
    }

    /// Drops ended blocks and windows that ended without one; recounts what is blocked.
    private mutating func sweep(now: Int64) {
        let window = settings.window
        entries = entries.filter { _, entry in
            entry.blockedUntil > now || (entry.blockedUntil == 0 && now - entry.windowStart < window)
        }
        blocked = 0
        nextUnblock = .max
        for entry in entries.values where entry.blockedUntil > now {
            blocked += 1
            nextUnblock = min(nextUnblock, entry.blockedUntil)
        }
    }
}
