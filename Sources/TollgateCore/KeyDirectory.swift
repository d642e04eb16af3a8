import Synchronization

/// The process-wide authentication cache in front of a `KeyStore`.
///
/// Positive answers live for `positiveTTL` (a revoked key stops working within it), unknown
/// keys for the shorter `negativeTTL` (junk keys reach the store at most once per negative TTL),
/// and concurrent misses for one key share a single store lookup. Event loops keep their own
/// lock-free copy of entries (`expiresAt` travels with the answer), so this lock is taken
/// only when a loop's copy is missing or expired.
public final class KeyDirectory: Sendable {
    public struct Settings: Sendable {
        public var positiveTTL: Duration
        public var negativeTTL: Duration
        public var maxEntries: Int

        public init(positiveTTL: Duration = .seconds(10), negativeTTL: Duration = .seconds(2), maxEntries: Int = 100_000) {
            self.positiveTTL = positiveTTL
            self.negativeTTL = negativeTTL
            self.maxEntries = maxEntries
        }
    }

    /// A lookup together with the monotonic instant (nanoseconds) it stops being trusted.
    public struct Answer: Sendable {
        public var lookup: KeyLookup
        public var expiresAt: Int64
    }

    private struct State {
        var entries: [KeyHash: Answer] = [:]
        var inFlight: [KeyHash: Task<Answer, Never>] = [:]
        var cells: [Int64: KeyCells] = [:]
    }

    private let store: any KeyStore
    private let ledger: QuotaLedger
    private let plans: [String: Plan]
    private let settings: Settings
    private let clock: @Sendable () -> Int64
    private let state = Mutex(State())

    /// - Parameter clock: monotonic nanoseconds; injected so tests control expiry.
    public init(
        store: any KeyStore, ledger: QuotaLedger, plans: [String: Plan], settings: Settings = Settings(),
        clock: @escaping @Sendable () -> Int64
    ) {
        self.store = store
        self.ledger = ledger
        self.plans = plans
        self.settings = settings
        self.clock = clock
    }

    /// The cached answer if it is still fresh.
    public func cached(_ hash: KeyHash) -> Answer? {
        let now = clock()
        return state.withLock { state in
            guard let answer = state.entries[hash], answer.expiresAt > now else { return nil }
            return answer
        }
    }

    /// Forgets every cached answer for the key with `prefix` (revoked or changed elsewhere), so
    /// the next request asks the store again.
    public func invalidate(prefix: String) {
        state.withLock { state in
            state.entries = state.entries.filter { _, answer in
                if case .found(let context) = answer.lookup { return context.record.prefix != prefix }
                return true
            }
        }
    }

    /// The answer for `hash`: from cache, or from one store lookup shared by all who ask.
    public func resolve(_ hash: KeyHash) async -> Answer {
        let now = clock()
        let task: Task<Answer, Never> = state.withLock { state in
            if let answer = state.entries[hash], answer.expiresAt > now {
                return Task { answer }
            }
            if let running = state.inFlight[hash] { return running }
            let task = Task { await self.fetch(hash) }
            state.inFlight[hash] = task
            return task
        }
        return await task.value
    }

    private func fetch(_ hash: KeyHash) async -> Answer {
        let lookup: KeyLookup
        let ttl: Duration
        do {
            if let record = try await store.lookup(hash: hash) {
                if let plan = plans[record.plan] {
                    let cells = await cells(for: record.id)
                    lookup = .found(KeyContext(record: record, plan: plan, cells: cells))
                } else {
                    lookup = .unknownPlan(record.plan)
                }
                ttl = settings.positiveTTL
            } else {
                lookup = .notFound
                ttl = settings.negativeTTL
            }
        } catch {
            lookup = .unavailable
            ttl = .zero
        }
        let answer = Answer(lookup: lookup, expiresAt: clock() + ttl.nanoseconds)
        state.withLock { state in
            state.inFlight[hash] = nil
            guard ttl > .zero else { return }
            if state.entries.count >= settings.maxEntries {
                Self.evict(&state.entries, now: clock(), capacity: settings.maxEntries)
            }
            state.entries[hash] = answer
        }
        return answer
    }

    private func cells(for keyID: Int64) async -> KeyCells {
        if let cells = state.withLock({ $0.cells[keyID] }) { return cells }
        let quota = await ledger.cell(for: keyID)
        return state.withLock { state in
            if let cells = state.cells[keyID] { return cells }
            let cells = KeyCells(cu: RateLimitCell(), requests: RateLimitCell(), quota: quota)
            state.cells[keyID] = cells
            return cells
        }
    }

    /// Drops expired entries, then, if still full, an arbitrary tenth: bounded memory under a
    /// flood of random keys matters more than perfect retention.
    private static func evict(_ entries: inout [KeyHash: Answer], now: Int64, capacity: Int) {
        entries = entries.filter { $0.value.expiresAt > now }
        guard entries.count >= capacity else { return }
        for key in Array(entries.keys.prefix(capacity / 10 + 1)) { entries.removeValue(forKey: key) }
    }
}

extension Duration {
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
