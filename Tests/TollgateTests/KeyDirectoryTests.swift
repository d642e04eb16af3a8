import Synchronization
import Testing
@testable import TollgateCore

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let value = Atomic<Int64>(1_000_000_000)
    var now: Int64 { value.load(ordering: .relaxed) }
    func advance(_ duration: Duration) { value.add(duration.nanoseconds, ordering: .relaxed) }
}

/// A store whose lookups wait until released, to prove single-flight.
final class GatedStore: KeyStore {
    let inner = InMemoryKeyStore()
    let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
    let waiting = Atomic<Int>(0)

    func lookup(hash: KeyHash) async throws -> APIKeyRecord? {
        waiting.add(1, ordering: .relaxed)
        await withCheckedContinuation { continuation in gate.withLock { $0 = continuation } }
        return try await inner.lookup(hash: hash)
    }
    func release() { gate.withLock { $0?.resume(); $0 = nil } }
    func create(_ record: APIKeyRecord) async throws -> APIKeyRecord { try await inner.create(record) }
    func list() async throws -> [APIKeyRecord] { try await inner.list() }
    func revoke(prefix: String) async throws -> Bool { try await inner.revoke(prefix: prefix) }
    func setPlan(prefix: String, plan: String) async throws -> Bool { try await inner.setPlan(prefix: prefix, plan: plan) }
    func record(prefix: String) async throws -> APIKeyRecord? { try await inner.record(prefix: prefix) }
    func setExpiry(prefix: String, expiresAt: Int64?) async throws -> Bool { try await inner.setExpiry(prefix: prefix, expiresAt: expiresAt) }
    func update(_ record: APIKeyRecord) async throws -> Bool { try await inner.update(record) }
    func ping() async -> Bool { true }
}

@Suite struct KeyDirectoryTests {
    let plans = ["free": Plan(name: "free", cuPerSecond: 10, requestsPerSecond: 10, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1)]

    func record(_ key: String, plan: String = "free") -> APIKeyRecord {
        APIKeyRecord(prefix: APIKeyToken.prefix(of: key), hash: KeyHash(key: key), plan: plan, createdAt: 0)
    }

    @Test func positiveAnswersLiveForTheTTLThenSeeRevocation() async throws {
        let store = InMemoryKeyStore()
        let clock = ManualClock()
        let directory = KeyDirectory(store: store, ledger: QuotaLedger(store: nil), plans: plans,
            settings: .init(positiveTTL: .seconds(10), negativeTTL: .seconds(2)), clock: { clock.now })
        let stored = try await store.create(record("tg_a"))
        guard case .found = await directory.resolve(stored.hash).lookup else { Issue.record("not found"); return }
        _ = try await store.revoke(prefix: stored.prefix)
        clock.advance(.seconds(9))
        guard case .found(let cached) = try #require(directory.cached(stored.hash)).lookup else { Issue.record("cache lost"); return }
        #expect(cached.record.status == .active)
        #expect(store.lookupCount == 1)
        clock.advance(.seconds(2))
        // Past the TTL the old entry still answers at once, while one refresh asks the store...
        guard case .found(let held) = try #require(directory.cached(stored.hash)).lookup else { Issue.record("held entry lost"); return }
        #expect(held.record.status == .active)
        // ...and the refresh brings the revocation.
        #expect(await eventually(timeout: .seconds(5)) {
            guard case .found(let fresh) = directory.cached(stored.hash)?.lookup else { return false }
            return fresh.record.status == .revoked
        })
        #expect(store.lookupCount == 2)
        guard case .found(let fresh) = await directory.resolve(stored.hash).lookup else { Issue.record("not found"); return }
        #expect(fresh.record.status == .revoked)
        // The limiter state survives the refresh.
        #expect(fresh.cuCell === cached.cuCell)
    }

    /// A known key whose entry expired never waits on the store: every request is answered from
    /// the entry at once while a single background refresh runs, however long that takes.
    @Test func expiredKnownKeysAreServedWhileOneRefreshRuns() async throws {
        let store = GatedStore()
        let clock = ManualClock()
        let directory = KeyDirectory(store: store, ledger: QuotaLedger(store: nil), plans: plans,
            settings: .init(positiveTTL: .seconds(10)), clock: { clock.now })
        let stored = try await store.create(record("tg_e"))
        async let first = directory.resolve(stored.hash)
        while store.waiting.load(ordering: .relaxed) == 0 { await Task.yield() }
        store.release()
        guard case .found = await first.lookup else { Issue.record("not found"); return }

        clock.advance(.seconds(11))
        for _ in 0..<50 {
            // The store is held shut: were any of these waiting on it, they would never return.
            guard case .found = try #require(directory.cached(stored.hash)).lookup else { Issue.record("not served"); return }
            guard case .found = await directory.resolve(stored.hash).lookup else { Issue.record("not served"); return }
        }
        while store.waiting.load(ordering: .relaxed) < 2 { await Task.yield() }
        #expect(store.waiting.load(ordering: .relaxed) == 2)  // one refresh for all of them
        store.release()
        #expect(await eventually(timeout: .seconds(5)) {
            guard let answer = directory.cached(stored.hash) else { return false }
            return answer.expiresAt > clock.now + Duration.seconds(5).nanoseconds
        })
        // A key never seen still waits for the store.
        let unseen = KeyHash(key: "tg_never")
        #expect(directory.cached(unseen) == nil)
    }

    @Test func unknownKeysReachTheStoreOncePerNegativeTTL() async {
        let store = InMemoryKeyStore()
        let clock = ManualClock()
        let directory = KeyDirectory(store: store, ledger: QuotaLedger(store: nil), plans: plans,
            settings: .init(positiveTTL: .seconds(10), negativeTTL: .seconds(2)), clock: { clock.now })
        let hash = KeyHash(key: "tg_unknown")
        for _ in 0..<20 {
            guard case .notFound = await directory.resolve(hash).lookup else { Issue.record("found?"); return }
        }
        #expect(store.lookupCount == 1)
        clock.advance(.seconds(3))
        _ = await directory.resolve(hash)
        #expect(store.lookupCount == 2)
    }

    @Test func concurrentMissesShareOneLookup() async throws {
        let store = GatedStore()
        let directory = KeyDirectory(store: store, ledger: QuotaLedger(store: nil), plans: plans, clock: { 1 })
        let stored = try await store.create(record("tg_b"))
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<25 {
                group.addTask {
                    if case .found = await directory.resolve(stored.hash).lookup { return true }
                    return false
                }
            }
            while store.waiting.load(ordering: .relaxed) == 0 { await Task.yield() }
            // Let every other caller reach the directory before the lookup completes.
            for _ in 0..<100 { await Task.yield() }
            store.release()
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 })
        #expect(store.waiting.load(ordering: .relaxed) == 1)
    }

    @Test func storeFailureIsNotCachedAndUnknownPlanIsReported() async throws {
        let store = InMemoryKeyStore()
        let directory = KeyDirectory(store: store, ledger: QuotaLedger(store: nil), plans: plans, clock: { 1 })
        let orphan = try await store.create(record("tg_c", plan: "gone"))
        guard case .unknownPlan("gone") = await directory.resolve(orphan.hash).lookup else { Issue.record("plan"); return }
        store.setFailing(true)
        let other = KeyHash(key: "tg_d")
        guard case .unavailable = await directory.resolve(other).lookup else { Issue.record("failure hidden"); return }
        #expect(directory.cached(other) == nil)
    }
}

@Suite struct StaleWhileErrorTests {
    let plans = [
        "free": Plan(name: "free", cuPerSecond: 10, requestsPerSecond: 10, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1),
        "anon": Plan(name: "anon", cuPerSecond: 1, requestsPerSecond: 1, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1),
    ]
    final class Clock: Sendable {
        let now = Atomic<Int64>(1)
        func advance(_ duration: Duration) { now.add(duration.nanoseconds, ordering: .relaxed) }
    }

    @Test func knownKeysOutliveTheirTTLWhileTheStoreFailsButNotPastMaxStale() async throws {
        let store = InMemoryKeyStore()
        let clock = Clock()
        let directory = KeyDirectory(
            store: store, ledger: QuotaLedger(store: nil), plans: plans,
            settings: .init(positiveTTL: .seconds(10), maxStale: .seconds(60)), clock: { clock.now.load(ordering: .relaxed) })
        let key = try await store.create(APIKeyRecord(prefix: "tg_a", hash: KeyHash(key: "tg_a"), plan: "free", createdAt: 0))
        guard case .found = await directory.resolve(key.hash).lookup else { Issue.record("not found"); return }
        store.setFailing(true)
        clock.advance(.seconds(30))
        // The first request past the TTL is served at once and starts a refresh, which fails.
        guard case .found = await directory.resolve(key.hash).lookup else { Issue.record("expired entry not served"); return }
        #expect(await eventually(timeout: .seconds(5)) { !directory.storeReachable })
        clock.advance(.seconds(2))
        let stale = await directory.resolve(key.hash)
        guard case .found(let context) = stale.lookup else { Issue.record("stale entry not served"); return }
        #expect(stale.source == .stale && context.record.id == key.id)
        #expect(directory.storeReachable == false)
        // An unknown key fails closed without an anonymous plan.
        guard case .unavailable = await directory.resolve(KeyHash(key: "tg_unknown")).lookup else { Issue.record("unknown served"); return }
        // Past TTL + max staleness the key is refused too: staleness is bounded.
        clock.advance(.seconds(39))
        guard case .unavailable = await directory.resolve(key.hash).lookup else { Issue.record("served past max stale"); return }
        // The store back: fresh answers again.
        store.setFailing(false)
        let fresh = await directory.resolve(key.hash)
        guard case .found = fresh.lookup else { Issue.record("not found after recovery"); return }
        #expect(fresh.source == .store && directory.storeReachable)
    }

    @Test func unknownKeysGetTheAnonymousPlanOnlyWhileTheStoreFails() async throws {
        let store = InMemoryKeyStore()
        let directory = KeyDirectory(
            store: store, ledger: QuotaLedger(store: nil), plans: plans,
            settings: .init(anonymousPlan: "anon"), clock: { 1 })
        guard case .notFound = await directory.resolve(KeyHash(key: "tg_x")).lookup else { Issue.record("unknown key served"); return }
        store.setFailing(true)
        let first = await directory.resolve(KeyHash(key: "tg_y"))
        let second = await directory.resolve(KeyHash(key: "tg_z"))
        guard case .found(let a) = first.lookup, case .found(let b) = second.lookup else { Issue.record("anonymous plan not used"); return }
        #expect(first.source == .anonymous && a.plan.name == "anon")
        // Every anonymous caller shares one limiter.
        #expect(a.cuCell === b.cuCell)
    }
}
