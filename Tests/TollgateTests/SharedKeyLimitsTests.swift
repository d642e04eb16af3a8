import Synchronization
import Testing
import TollgateCore

/// The lease-based shared limits without Redis: a fake limiter answers leases synchronously.
@Suite struct SharedKeyLimitsTests {
    final class FakeLimiter: SharedLimiter {
        let available = Atomic<Bool>(true)
        let asked = Mutex<[LeaseRequest]>([])
        let answer = Mutex<LeaseGrant?>(LeaseGrant(requests: 0, cu: 0))
        /// When false, leases stay in flight until `complete()`.
        let immediate = Atomic<Bool>(true)
        let pending = Mutex<(@Sendable (LeaseGrant?) -> Void)?>(nil)
        var isAvailable: Bool { available.load(ordering: .relaxed) }
        func mayAsk(now: Int64) -> Bool { true }
        let leaseTTL: Int64 = 1_000_000_000
        let localShare = 0.5
        let settle: Int64 = 500_000_000

        func lease(_ request: LeaseRequest, done: @escaping @Sendable (LeaseGrant?) -> Void) {
            asked.withLock { $0.append(request) }
            if immediate.load(ordering: .relaxed) { done(answer.withLock { $0 }) } else { pending.withLock { $0 = done } }
        }

        func complete() { pending.withLock { $0 }?(answer.withLock { $0 }) }
    }

    final class Clock: Sendable {
        let now = Atomic<Int64>(1_000_000_000)
        func read() -> Int64 { now.load(ordering: .relaxed) }
    }

    static let plan = Plan(name: "p", cuPerSecond: 1_000, requestsPerSecond: 100, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1)

    func context(_ limiter: FakeLimiter, clock: Clock) -> KeyContext {
        let shared = SharedKeyLimits(keyID: 7, limiter: limiter, clock: { clock.read() })
        let record = APIKeyRecord(id: 7, prefix: "tg_x", hash: KeyHash(key: "tg_x"), plan: "p", createdAt: 0)
        return KeyContext(
            record: record, plan: Self.plan,
            cells: KeyCells(cu: RateLimitCell(), requests: RateLimitCell(), quota: QuotaCell(keyID: 7, used: 0), shared: shared),
            leaseSeconds: 0.1)
    }

    @Test func chunksFollowThePlanAndStayWithinTheBurst() {
        let spec = LeaseSpec(plan: Self.plan, leaseSeconds: 0.1)
        #expect(spec.requestChunk == 10 && spec.cuChunk == 100)
        #expect(spec.requestInterval == 10_000 && spec.requestTolerance == 1_000_000)
        #expect(LeaseSpec(plan: Self.plan, leaseSeconds: 5).requestChunk == 100)  // capped at the burst
    }

    @Test func coldStartAdmitsLocallyAtTheShareAndChargesItWithTheFirstLease() {
        let limiter = FakeLimiter()
        limiter.immediate.store(false, ordering: .relaxed)
        let clock = Clock()
        let key = context(limiter, clock: clock)
        #expect(key.localRequestLimit.limit == 50)  // half of 100/s with a 1 s burst
        // No lease yet: the local half-share burst admits 50 and refuses the 51st.
        var admitted = 0
        for _ in 0..<60 { if case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) { admitted += 1 } }
        #expect(admitted == 50)
        // One lease in flight, not sixty.
        #expect(limiter.asked.withLock { $0.count } == 1)
        limiter.answer.withLock { $0 = LeaseGrant(requests: 10, cu: 100) }
        limiter.complete()
        // The next lease carries what was admitted locally since the first ask.
        limiter.immediate.store(true, ordering: .relaxed)
        for _ in 0..<10 { guard case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) else { Issue.record("lease not spent"); return } }
        let requests = limiter.asked.withLock { $0 }
        #expect(requests.count >= 2)
        #expect(requests[1].debtRequests == 49 && requests[1].debtCU == 49)
    }

    @Test func leasedUnitsAreSpentThenRefusedWithTheStoresWait() {
        let limiter = FakeLimiter()
        let clock = Clock()
        limiter.answer.withLock { $0 = LeaseGrant(requests: 10, cu: 100) }
        let key = context(limiter, clock: clock)
        _ = key.admit(calls: 1, cu: 1, now: clock.read())  // cold: local, and the first lease arrives
        limiter.answer.withLock { $0 = LeaseGrant(requests: 0, cu: 0, requestWait: 80_000_000, cuWait: 0) }
        var admitted = 0
        var refusal: Admission?
        for _ in 0..<20 {
            let verdict = key.admit(calls: 1, cu: 1, now: clock.read())
            if case .admitted = verdict { admitted += 1 } else { refusal = verdict; break }
        }
        // Ten leased units (the prefetch found the bucket empty), then a refusal that waits for Redis.
        #expect(admitted == 10)
        guard case .rateLimited(let kind, _, let retryAfter, _) = refusal else { Issue.record("not refused: \(String(describing: refusal))"); return }
        #expect(kind == "requests" && retryAfter >= 70_000_000)
        // While told to wait, the key does not ask again.
        let asks = limiter.asked.withLock { $0.count }
        _ = key.admit(calls: 1, cu: 1, now: clock.read())
        #expect(limiter.asked.withLock { $0.count } == asks)
    }

    @Test func anUnavailableStoreMeansLocalLimitsAndTheirUnitsOwedFromTheFirst() {
        let limiter = FakeLimiter()
        limiter.available.store(false, ordering: .relaxed)
        limiter.answer.withLock { $0 = nil }
        let clock = Clock()
        let key = context(limiter, clock: clock)
        // Never leased (a cold start into an outage): the local share's full burst.
        var admitted = 0
        for _ in 0..<60 { if case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) { admitted += 1 } }
        #expect(admitted == 50)
        // Every failed ask put its debt back: nothing admitted is forgotten.
        #expect(limiter.asked.withLock { $0.count } > 0)
        limiter.available.store(true, ordering: .relaxed)
        limiter.answer.withLock { $0 = LeaseGrant(requests: 10, cu: 100) }
        clock.now.add(2_000_000_000, ordering: .relaxed)
        _ = key.admit(calls: 1, cu: 1, now: clock.read())
        let charged = limiter.asked.withLock { $0.last! }
        // The 50 from the outage and the one just admitted, dated from the outage's first.
        #expect(charged.debtRequests == 51 && charged.debtCU == 51)
        #expect(charged.debtAge == 2_000_000_000)
    }

    @Test func aKeyThatWasUsingItsLeaseFallsBackWithoutABurst() {
        let limiter = FakeLimiter()
        let clock = Clock()
        limiter.answer.withLock { $0 = LeaseGrant(requests: 10, cu: 100) }
        let key = context(limiter, clock: clock)
        for _ in 0..<5 { _ = key.admit(calls: 1, cu: 1, now: clock.read()) }
        // The store goes: leased units are not spent while it is away, and the local half-share
        // (50/s) starts with one unit, not its 50 of burst.
        limiter.available.store(false, ordering: .relaxed)
        limiter.answer.withLock { $0 = nil }
        clock.now.add(10_000_000, ordering: .relaxed)
        var admitted = 0
        for _ in 0..<60 { if case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) { admitted += 1 } }
        #expect(admitted == 1)
        // Then the local rate: 20 ms per unit at 50/s, so ten more over the next 200 ms.
        for _ in 0..<10 {
            clock.now.add(20_000_000, ordering: .relaxed)
            guard case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) else { Issue.record("local rate refused"); return }
        }
        if case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) { Issue.record("a burst after the drain") }
        // Back: the next request is refused locally (10 ms into a 20 ms interval) but asks for a
        // lease, which owes the eleven, from the first of them, 210 ms ago; then it is served leased.
        limiter.available.store(true, ordering: .relaxed)
        limiter.answer.withLock { $0 = LeaseGrant(requests: 10, cu: 100) }
        clock.now.add(10_000_000, ordering: .relaxed)
        let asks = limiter.asked.withLock { $0.count }
        _ = key.admit(calls: 1, cu: 1, now: clock.read())
        #expect(limiter.asked.withLock { $0.count } == asks + 1)
        let charged = limiter.asked.withLock { $0.last! }
        #expect(charged.debtRequests == 11)
        #expect(charged.debtAge == 210_000_000)
        // That first answer only charges: it asks for nothing, and the key keeps to its local
        // rate, still without a burst, for the settle, while the other replicas charge theirs.
        #expect(charged.askRequests == 0 && charged.askCU == 0)
        clock.now.add(10_000_000, ordering: .relaxed)
        guard case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) else { Issue.record("local rate refused during the settle"); return }
        if case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) { Issue.record("a burst during the settle") }
        #expect(limiter.asked.withLock { $0.count } == asks + 1)
        // After the settle: a lease that asks, owing what the settle admitted; then served leased.
        clock.now.add(500_000_000, ordering: .relaxed)
        guard case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) else { Issue.record("refused after the settle"); return }
        let resumed = limiter.asked.withLock { $0.last! }
        #expect(resumed.askRequests > 0 && resumed.debtRequests == 2)
        let before = limiter.asked.withLock { $0.count }
        for _ in 0..<5 { guard case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) else { Issue.record("not served from the new lease"); return } }
        // Half the chunk spent: the prefetch asks again, owing nothing (spent leased, not admitted locally).
        let prefetch = limiter.asked.withLock { $0 }
        #expect(prefetch.count == before + 1 && prefetch.last!.debtRequests == 0)
    }

    @Test func anIdleKeysExpiredLeaseKeepsItsLocalBurstWhileTheStoreIsUp() {
        let limiter = FakeLimiter()
        limiter.immediate.store(false, ordering: .relaxed)
        let clock = Clock()
        limiter.answer.withLock { $0 = LeaseGrant(requests: 10, cu: 100) }
        let key = context(limiter, clock: clock)
        _ = key.admit(calls: 1, cu: 1, now: clock.read())
        limiter.complete()
        // Idle past the lease TTL, store up, next lease still in flight: local limits with the
        // share's burst (the lease only expired; nothing says the bucket was being used).
        clock.now.add(5_000_000_000, ordering: .relaxed)
        var admitted = 0
        for _ in 0..<60 { if case .admitted = key.admit(calls: 1, cu: 1, now: clock.read()) { admitted += 1 } }
        #expect(admitted == 50)
    }
}
