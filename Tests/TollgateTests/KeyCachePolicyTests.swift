import Testing
@testable import TollgateCore

/// The key directory's decisions with the time passed in: fresh, stale-while-revalidate,
/// stale-while-error, anonymous, fail closed, eviction.
@Suite struct KeyCachePolicyTests {
    let policy = KeyCachePolicy(settings: .init(
        positiveTTL: .seconds(10), negativeTTL: .seconds(2), maxEntries: 10, maxStale: .seconds(300), anonymousPlan: "anon"))
    static let s: Int64 = 1_000_000_000

    var known: KeyDirectory.Answer {
        let context = KeyContext(
            record: APIKeyRecord(id: 7, prefix: "tg_x", hash: KeyHash(key: "k"), plan: "free", createdAt: 0),
            plan: Plan(name: "free", cuPerSecond: 10, requestsPerSecond: 10, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1),
            cells: KeyCells(cu: RateLimitCell(), requests: RateLimitCell(), quota: QuotaCell(keyID: 7, used: 0), shared: nil))
        return policy.answer(.found(context), now: 0)
    }

    @Test func aKnownKeyIsFreshThenServedWhileRefreshedThenWaitedFor() {
        let entry = known
        #expect(entry.expiresAt == 10 * Self.s && entry.staleUntil == 310 * Self.s)
        guard case .fresh = policy.read(entry, now: 9 * Self.s, storeReachable: true) else { Issue.record("fresh"); return }
        guard case .serveAndRefresh(let held) = policy.read(entry, now: 11 * Self.s, storeReachable: true) else {
            Issue.record("stale-while-revalidate"); return
        }
        #expect(held.source == .store)
        guard case .serveAndRefresh(let stale) = policy.read(entry, now: 11 * Self.s, storeReachable: false) else { Issue.record("stale"); return }
        #expect(stale.source == .stale)
        guard case .fetch = policy.read(entry, now: 310 * Self.s, storeReachable: false) else { Issue.record("past max stale"); return }
        guard case .fetch = policy.read(nil, now: 0, storeReachable: true) else { Issue.record("never seen"); return }
    }

    @Test func anUnknownKeyIsRememberedBrieflyAndNeverServedStale() {
        let unknown = policy.answer(nil, now: 0)
        #expect(unknown.expiresAt == 2 * Self.s)
        guard case .fresh = policy.read(unknown, now: 1 * Self.s, storeReachable: true) else { Issue.record("negative entry"); return }
        guard case .fetch = policy.read(unknown, now: 3 * Self.s, storeReachable: true) else { Issue.record("expired negative"); return }
    }

    @Test func aFailedLookupFallsBackToStaleThenAnonymousThenRefusal() {
        guard case .stale(let stale) = policy.fallback(last: known, now: 20 * Self.s, knownPlans: ["anon"]) else { Issue.record("stale"); return }
        // Retried after at most a second, never past the stale limit.
        #expect(stale.expiresAt == 21 * Self.s && stale.source == .stale)
        guard case .stale(let late) = policy.fallback(last: known, now: 309_500_000_000, knownPlans: ["anon"]) else { Issue.record("late"); return }
        #expect(late.expiresAt == 310 * Self.s)
        guard case .anonymous("anon", let until) = policy.fallback(last: nil, now: 0, knownPlans: ["anon"]) else { Issue.record("anon"); return }
        #expect(until == 1 * Self.s)
        // An anonymous plan that is not configured fails closed, as does a key past its stale limit.
        guard case .unavailable(let refused) = policy.fallback(last: known, now: 400 * Self.s, knownPlans: []) else { Issue.record("503"); return }
        #expect(!policy.isCacheable(refused, now: 400 * Self.s))
    }

    @Test func evictionKeepsWhatIsStillServableAndBoundsTheRest() {
        var entries: [Int: KeyDirectory.Answer] = [:]
        for index in 0..<5 { entries[index] = policy.answer(nil, now: 0) }        // expire at 2 s
        for index in 5..<10 { entries[index] = known }                             // servable until 310 s
        var early = entries
        policy.evict(&early, now: 1 * Self.s)
        #expect(early.count == 8)  // nothing expired: an arbitrary tenth of the capacity, plus one, goes
        policy.evict(&entries, now: 5 * Self.s)
        #expect(entries.count == 5 && entries.keys.allSatisfy { $0 >= 5 })
    }
}
