import Logging
import Synchronization

/// Identity shared by every unknown key served under the anonymous plan: one limiter for all
/// of them, so an outage cannot be turned into unlimited free access.
extension APIKeyRecord {
    public static func anonymous(plan: String) -> APIKeyRecord {
        APIKeyRecord(id: 0, prefix: "anonymous", hash: KeyHash(key: "tollgate-anonymous"), plan: plan, label: "anonymous", createdAt: 0)
    }
}

/// The process-wide authentication cache in front of a `KeyStore`.
///
/// Positive answers live for `positiveTTL`; after it a known key is still served at once from
/// its entry while one background refresh asks the store (stale-while-revalidate), so a
/// request never waits on the store for a key this process already knows. A revoked key stops
/// working when the refresh returns (the TTL plus one store round trip, without a revocation
/// channel). Unknown keys live for the shorter `negativeTTL` (junk keys reach the store at most
/// once per negative TTL), and concurrent misses for one key share a single store lookup. Event loops keep their own
/// lock-free copy of entries (`expiresAt` travels with the answer), so this lock is taken
/// only when a loop's copy is missing or expired.
public final class KeyDirectory: Sendable {
    public struct Settings: Sendable {
        public var positiveTTL: Duration
        public var negativeTTL: Duration
        public var maxEntries: Int
        /// How long past its TTL a known key keeps working while the store cannot answer
        /// (stale-while-error). Zero turns it off.
        public var maxStale: Duration
        /// The plan an unknown key is served under while the store cannot answer; nil refuses
        /// such keys (fail closed).
        public var anonymousPlan: String?

        public init(
            positiveTTL: Duration = .seconds(10), negativeTTL: Duration = .seconds(2), maxEntries: Int = 100_000,
            maxStale: Duration = .seconds(300), anonymousPlan: String? = nil
        ) {
            self.positiveTTL = positiveTTL
            self.negativeTTL = negativeTTL
            self.maxEntries = maxEntries
            self.maxStale = maxStale
            self.anonymousPlan = anonymousPlan
        }
    }

    /// Where an answer came from when the store could not give a fresh one.
    public enum Source: Sendable, Equatable {
        case store
        /// A known key's expired entry, served because the store failed.
        case stale
        /// An unknown key served under the anonymous plan because the store failed.
        case anonymous
    }

    /// A lookup together with the monotonic instant (nanoseconds) it stops being trusted.
    public struct Answer: Sendable {
        public var lookup: KeyLookup
        public var expiresAt: Int64
        public var source: Source = .store
        /// Until when this entry may be served stale (nanoseconds; the fill time plus TTL plus
        /// `maxStale`); it never moves forward without a store answer.
        var staleUntil: Int64 = 0
    }

    private struct State {
        var entries: [KeyHash: Answer] = [:]
        var inFlight: [KeyHash: Task<Answer, Never>] = [:]
        var cells: [Int64: KeyCells] = [:]
    }

    private let store: any KeyStore
    private let ledger: QuotaLedger
    /// Replaced whole by a config reload (`replacePlans`).
    private let plans: Mutex<[String: Plan]>
    private let settings: Settings
    private let policy: KeyCachePolicy
    private let clock: @Sendable () -> Int64
    private let sharedLimiter: (any SharedLimiter)?
    private let leaseSeconds: Double
    private let logger: Logger?
    private let state = Mutex(State())
    private let reachable = Atomic<Bool>(true)

    /// - Parameters:
    ///   - clock: monotonic nanoseconds; injected so tests control expiry.
    ///   - sharedLimiter: cluster-wide limits (Redis); nil limits each key in this process only.
    ///   - leaseSeconds: how many seconds of a key's rate one lease takes from the shared limiter.
    public init(
        store: any KeyStore, ledger: QuotaLedger, plans: [String: Plan], settings: Settings = Settings(),
        sharedLimiter: (any SharedLimiter)? = nil, leaseSeconds: Double = 0.05, logger: Logger? = nil,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.logger = logger
        self.sharedLimiter = sharedLimiter
        self.leaseSeconds = leaseSeconds
        self.store = store
        self.ledger = ledger
        self.plans = Mutex(plans)
        self.settings = settings
        self.policy = KeyCachePolicy(settings: settings)
        self.clock = clock
    }

    /// False after the store's last answer was a failure, true again after a success.
    public var storeReachable: Bool { reachable.load(ordering: .relaxed) }

    /// The cached answer without waiting: a fresh entry, or a known key's expired entry still
    /// within its stale limit, served at once while one background refresh runs
    /// (stale-while-revalidate). Nil means the caller must wait for `resolve`: a key never
    /// seen, an unknown key whose negative entry expired, or one stale for too long.
    public func cached(_ hash: KeyHash) -> Answer? {
        let now = clock()
        return state.withLock { state in
            switch policy.read(state.entries[hash], now: now, storeReachable: storeReachable) {
            case .fresh(let answer): return answer
            case .serveAndRefresh(let answer):
                refresh(hash, state: &state)
                return answer
            case .fetch: return nil
            }
        }
    }

    /// Starts one background refresh of `hash` unless one already runs.
    private func refresh(_ hash: KeyHash, state: inout State) {
        if state.inFlight[hash] == nil {
            state.inFlight[hash] = Task { await self.fetch(hash) }
        }
    }

    /// Forgets every cached answer for the key with `prefix` (revoked or changed elsewhere), so
    /// the next request asks the store again.
    /// A config reload's plans: every cached key is given its plan's new terms at once (its
    /// limiter, quota and connection cells are kept, so nothing resets), a key whose plan is
    /// gone answers `unknownPlan`, and the store is not asked again.
    public func replacePlans(_ new: [String: Plan]) {
        plans.withLock { $0 = new }
        state.withLock { state in
            for (hash, answer) in state.entries {
                switch answer.lookup {
                case .found(let context):
                    var rebuilt = answer
                    if let plan = new[context.record.plan] {
                        let cells = KeyCells(
                            cu: context.cuCell, requests: context.requestCell, quota: context.quota, shared: context.shared,
                            connections: context.connections, webSockets: context.webSockets, subscriptions: context.subscriptions)
                        rebuilt.lookup = .found(KeyContext(record: context.record, plan: plan, cells: cells, leaseSeconds: leaseSeconds))
                    } else {
                        rebuilt.lookup = .unknownPlan(context.record.plan)
                    }
                    state.entries[hash] = rebuilt
                case .unknownPlan:
                    state.entries[hash] = nil  // perhaps declared now: asked again
                case .notFound, .unavailable:
                    continue
                }
            }
        }
    }

    public func invalidate(prefix: String) {
        state.withLock { state in
            state.entries = state.entries.filter { _, answer in
                if case .found(let context) = answer.lookup { return context.record.prefix != prefix }
                return true
            }
        }
    }

    /// The answer for `hash`: from cache (fresh, or stale while a refresh runs), or from one
    /// store lookup shared by all who ask.
    public func resolve(_ hash: KeyHash) async -> Answer {
        let now = clock()
        let task: Task<Answer, Never> = state.withLock { state in
            switch policy.read(state.entries[hash], now: now, storeReachable: storeReachable) {
            case .fresh(let answer): return Task { answer }
            case .serveAndRefresh(let answer):
                refresh(hash, state: &state)
                return Task { answer }
            case .fetch:
                if let running = state.inFlight[hash] { return running }
                let task = Task { await self.fetch(hash) }
                state.inFlight[hash] = task
                return task
            }
        }
        return await task.value
    }

    private func fetch(_ hash: KeyHash) async -> Answer {
        var answer: Answer
        do {
            let record = try await store.lookup(hash: hash)
            if !reachable.exchange(true, ordering: .relaxed) {
                logger?.notice("key store answers again: keys are read from it")
            }
            let lookup: KeyLookup? = if let record { await found(record) } else { nil }
            answer = policy.answer(lookup, now: clock())
        } catch {
            if reachable.exchange(false, ordering: .relaxed) {
                let unknown = settings.anonymousPlan.map { "served under plan \($0)" } ?? "refused (503)"
                logger?.warning(
                    "key store unreachable: known keys served from cache for up to \(settings.maxStale), unknown keys \(unknown)",
                    metadata: ["error": "\(error)"])
            }
            answer = await fallback(for: hash)
        }
        let cacheable = policy.isCacheable(answer, now: clock())
        state.withLock { state in
            state.inFlight[hash] = nil
            guard cacheable else { return }
            policy.evict(&state.entries, now: clock())
            state.entries[hash] = answer
        }
        return answer
    }

    private func found(_ record: APIKeyRecord) async -> KeyLookup {
        guard let plan = plans.withLock({ $0[record.plan] }) else { return .unknownPlan(record.plan) }
        return .found(KeyContext(record: record, plan: plan, cells: await cells(for: record.id), leaseSeconds: leaseSeconds))
    }

    /// The answer while the store fails: the key's last known entry for a short while, the
    /// anonymous plan, or a refusal (`KeyCachePolicy.fallback`).
    private func fallback(for hash: KeyHash) async -> Answer {
        let now = clock()
        let planNames = Set(plans.withLock { $0.keys })
        switch policy.fallback(last: state.withLock { $0.entries[hash] }, now: now, knownPlans: planNames) {
        case .stale(let answer), .unavailable(let answer):
            return answer
        case .anonymous(let plan, let expiresAt):
            return Answer(lookup: await found(.anonymous(plan: plan)), expiresAt: expiresAt, source: .anonymous, staleUntil: expiresAt)
        }
    }

    private func cells(for keyID: Int64) async -> KeyCells {
        if let cells = state.withLock({ $0.cells[keyID] }) { return cells }
        let quota = await ledger.cell(for: keyID)
        return state.withLock { state in
            if let cells = state.cells[keyID] { return cells }
            let shared = sharedLimiter.map { SharedKeyLimits(keyID: keyID, limiter: $0, clock: clock) }
            let cells = KeyCells(cu: RateLimitCell(), requests: RateLimitCell(), quota: quota, shared: shared)
            state.cells[keyID] = cells
            return cells
        }
    }
}

extension Duration {
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
