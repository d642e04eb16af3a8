import NIOCore
import Synchronization

/// What one lease asks the shared store for, derived from the key's plan (so a plan change
/// applies from the next lease on).
public struct LeaseSpec: Sendable, Equatable {
    /// GCRA parameters in microseconds per unit and burst microseconds, as the shared store keeps time.
    public var requestInterval: Double
    public var requestTolerance: Double
    public var cuInterval: Double
    public var cuTolerance: Double
    /// Units one lease takes at first: `leaseSeconds` of the rate, at least 1, at most the burst.
    public var requestChunk: Int64
    public var cuChunk: Int64
    /// The burst in units: no lease asks for more.
    public var requestBurst: Int64
    public var cuBurst: Int64

    public init(plan: Plan, leaseSeconds: Double) {
        func parts(_ rate: Int) -> (Double, Double, Int64, Int64) {
            let gcra = GCRA(ratePerSecond: rate, burstSeconds: plan.burstSeconds)
            let interval = 1_000_000 / Double(max(1, rate))
            let chunk = min(Int64(gcra.limit), max(1, Int64((Double(rate) * leaseSeconds).rounded(.up))))
            return (interval, interval * Double(gcra.limit), chunk, Int64(gcra.limit))
        }
        (requestInterval, requestTolerance, requestChunk, requestBurst) = parts(plan.requestsPerSecond)
        (cuInterval, cuTolerance, cuChunk, cuBurst) = parts(plan.cuPerSecond)
    }
}

/// One lease exchange: what is asked, returned and owed, and what came back.
public struct LeaseRequest: Sendable, Equatable {
    public var keyID: Int64
    public var spec: LeaseSpec
    public var askRequests: Int64
    public var askCU: Int64
    /// Units leased earlier that expired unspent: given back to the shared bucket.
    public var returnRequests: Int64
    public var returnCU: Int64
    /// Units admitted locally while this replica held no lease (cold start, or the store away):
    /// charged now.
    public var debtRequests: Int64
    public var debtCU: Int64
    /// Nanoseconds since the first of those units was admitted: the store charges them from then
    /// (as if each had been taken as it was admitted), so an outage's admissions use up the
    /// refill of the outage instead of adding to it.
    public var debtAge: Int64 = 0
}

public struct LeaseGrant: Sendable, Equatable {
    public var requests: Int64
    public var cu: Int64
    /// When nothing was granted: nanoseconds until the shared bucket has the asked units.
    public var requestWait: Int64
    public var cuWait: Int64
    /// For a charge after an outage: nanoseconds the key is to stay local, until the settle the
    /// store set at the outage's first charge ends; nil for the limiter's own `settle`.
    public var settle: Int64?

    public init(requests: Int64, cu: Int64, requestWait: Int64 = 0, cuWait: Int64 = 0, settle: Int64? = nil) {
        self.requests = requests
        self.cu = cu
        self.requestWait = requestWait
        self.cuWait = cuWait
        self.settle = settle
    }
}

/// The cluster-wide side of rate limiting (Redis in production). The hot path never awaits it:
/// it spends leased units locally and asks for more in the background.
public protocol SharedLimiter: Sendable {
    /// False while the shared store is unreachable: keys then fall back to local limits.
    var isAvailable: Bool { get }
    /// How long leased units stay valid, in nanoseconds; also how long a key trusts its last answer.
    var leaseTTL: Int64 { get }
    /// The share of each limit a replica enforces on its own when it holds no lease (e.g. 1/N).
    var localShare: Double { get }
    /// Nanoseconds a key keeps to its local limits after the first charge of what was admitted
    /// during an outage, before it leases again: time for the other replicas to find the store
    /// back and charge theirs, so that none of them takes the bucket's burst before all the
    /// outage's admissions are in it. About two probe intervals. The store may answer a charge
    /// with what is left of it (`LeaseGrant.settle`), so that every replica ends it together.
    var settle: Int64 { get }
    /// False while the store is down and no probe is due: the hot path then builds no lease request.
    func mayAsk(now: Int64) -> Bool
    /// Starts a lease in the background if the store may be asked now; `done` runs with the
    /// grant, or nil when the store failed.
    func lease(_ request: LeaseRequest, done: @escaping @Sendable (LeaseGrant?) -> Void)
}

/// A key's leased budgets on this replica, shared by every event loop and updated lock-free.
///
/// Units come from the shared GCRA in chunks; spending one is an atomic subtract. A key uses its
/// lease while the last answer from the shared store is younger than the lease TTL; otherwise
/// (cold start, store down) it is limited locally to `localShare` of the plan, and what it
/// admits so is charged to the shared bucket with the next lease, dated from when it was admitted.
///
/// Across an outage of the store, three rules keep a key at its rate: a key that held a lease
/// within its burst window starts its local fallback with no burst (the shared bucket's burst
/// is presumed spent: the key was using it); the units admitted during the outage are charged
/// to the shared bucket from the outage's start, so that the bucket does not come back full
/// from having refilled while nobody could take from it; and that first charge takes nothing,
/// the key staying local for the limiter's `settle`, so that the first replica back does not
/// lease a burst the other replicas' outage admissions, not yet charged, have already used.
public final class SharedKeyLimits: Sendable {
    public let keyID: Int64
    let limiter: any SharedLimiter
    let requestTokens = Atomic<Int64>(0)
    let cuTokens = Atomic<Int64>(0)
    /// Monotonic nanoseconds until which the last lease answer holds.
    let freshUntil = Atomic<Int64>(0)
    /// No lease before this instant when the last one came back empty.
    let retryAt = Atomic<Int64>(0)
    let leasing = Atomic<Bool>(false)
    let debtRequests = Atomic<Int64>(0)
    let debtCU = Atomic<Int64>(0)
    /// Monotonic nanoseconds of the first unit owed since the last charge; 0 when nothing is owed.
    let debtSince = Atomic<Int64>(0)
    /// Monotonic nanoseconds of the last lease answer that granted units; 0 once a fallback began.
    let lastGrantAt = Atomic<Int64>(0)
    /// The largest cost refused for want of units: the next lease asks at least this much.
    let wantRequests = Atomic<Int64>(0)
    let wantCU = Atomic<Int64>(0)
    /// Units owed from a time the store was away: the next lease only charges them, and the key
    /// stays local for the limiter's `settle` after.
    let outageOwed = Atomic<Bool>(false)
    /// Chunks per lease: doubles while the key spends a whole lease before the next arrives
    /// (Redis slow, replica busy), halves when leased units expire unspent.
    let scale = Atomic<Int64>(1)

    let clock: @Sendable () -> Int64

    /// - Parameter clock: monotonic nanoseconds, the gateway's clock; injected by tests.
    public init(keyID: Int64, limiter: any SharedLimiter, clock: @escaping @Sendable () -> Int64 = MonotonicClock.now) {
        self.keyID = keyID
        self.limiter = limiter
        self.clock = clock
    }

    /// True when admission should spend leased units rather than the local fallback.
    func isLeased(now: Int64) -> Bool {
        limiter.isAvailable && freshUntil.load(ordering: .relaxed) > now
    }

    /// Spends `calls` and `cu` leased units, all or nothing. Nil means admitted; otherwise the
    /// nanoseconds to wait and which limit refused.
    func spend(calls: Int64, cu: Int64, now: Int64, spec: LeaseSpec) -> (kind: String, wait: Int64)? {
        guard Self.take(requestTokens, calls) else {
            wantRequests.store(calls, ordering: .relaxed)
            refill(now: now, spec: spec)
            return ("requests", wait(now: now, units: calls, interval: spec.requestInterval))
        }
        guard Self.take(cuTokens, cu) else {
            requestTokens.add(calls, ordering: .relaxed)
            wantCU.store(cu, ordering: .relaxed)
            refill(now: now, spec: spec)
            return ("cu", wait(now: now, units: cu, interval: spec.cuInterval))
        }
        // Prefetch below half a chunk, so a busy key rarely runs dry while a lease is in flight.
        if requestTokens.load(ordering: .relaxed) < spec.requestChunk / 2 + 1 || cuTokens.load(ordering: .relaxed) < spec.cuChunk / 2 + 1 {
            refill(now: now, spec: spec)
        }
        return nil
    }

    /// Records units admitted by the local fallback while this replica held no lease, and asks
    /// for one (at once when the store is up, at the next probe when it is away).
    func admittedLocally(calls: Int64, cu: Int64, now: Int64, spec: LeaseSpec) {
        debtRequests.add(calls, ordering: .relaxed)
        debtCU.add(cu, ordering: .relaxed)
        if !limiter.isAvailable, !outageOwed.load(ordering: .relaxed) { outageOwed.store(true, ordering: .relaxed) }
        if debtSince.load(ordering: .relaxed) == 0 {
            _ = debtSince.compareExchange(expected: 0, desired: now, ordering: .relaxed)
        }
        refill(now: now, spec: spec)
    }

    /// True once when the store has gone away while this key was using leases (a grant within
    /// `window` nanoseconds): its local fallback then starts without a burst.
    func fallbackBegins(now: Int64, window: Int64) -> Bool {
        guard !limiter.isAvailable else { return false }
        let last = lastGrantAt.load(ordering: .relaxed)
        guard last != 0 else { return false }
        return lastGrantAt.compareExchange(expected: last, desired: 0, ordering: .relaxed).exchanged && now - last < window
    }

    /// Puts owed units back after a lease that failed, keeping the earliest date.
    private func owe(requests: Int64, cu: Int64, since: Int64) {
        guard requests > 0 || cu > 0 else { return }
        debtRequests.add(requests, ordering: .relaxed)
        debtCU.add(cu, ordering: .relaxed)
        var current = debtSince.load(ordering: .relaxed)
        while current == 0 || (since != 0 && since < current) {
            let (exchanged, original) = debtSince.compareExchange(expected: current, desired: since, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    private func wait(now: Int64, units: Int64, interval: Double) -> Int64 {
        max(retryAt.load(ordering: .relaxed) - now, Int64(Double(units) * interval * 1_000))
    }

    /// Asks for a lease unless one is in flight or the store asked us to wait.
    func refill(now: Int64, spec: LeaseSpec) {
        guard retryAt.load(ordering: .relaxed) <= now, limiter.mayAsk(now: now) else { return }
        guard leasing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        // Units of an expired lease go back to the shared bucket instead of being spent late.
        let expired = freshUntil.load(ordering: .relaxed) <= now
        let returnRequests = expired ? max(0, requestTokens.exchange(0, ordering: .relaxed)) : 0
        let returnCU = expired ? max(0, cuTokens.exchange(0, ordering: .relaxed)) : 0
        var factor = scale.load(ordering: .relaxed)
        if returnRequests > 0 || returnCU > 0, factor > 1 {
            factor /= 2
            scale.store(factor, ordering: .relaxed)
        }
        // Back from an outage: the first answer the store gives this key only charges what it
        // admitted meanwhile. Taking units now would take from a bucket that does not yet hold
        // the other replicas' admissions of the outage, and so looks fuller than it is.
        let settling = outageOwed.load(ordering: .relaxed)
        let askRequests = settling ? 0 : max(min(spec.requestChunk * factor, spec.requestBurst), wantRequests.exchange(0, ordering: .relaxed))
        let askCU = settling ? 0 : max(min(spec.cuChunk * factor, spec.cuBurst), wantCU.exchange(0, ordering: .relaxed))
        let owedSince = debtSince.exchange(0, ordering: .relaxed)
        let request = LeaseRequest(
            keyID: keyID, spec: spec, askRequests: askRequests, askCU: askCU,
            returnRequests: returnRequests, returnCU: returnCU,
            debtRequests: debtRequests.exchange(0, ordering: .relaxed), debtCU: debtCU.exchange(0, ordering: .relaxed),
            debtAge: owedSince == 0 ? 0 : max(0, now - owedSince))
        let ttl = limiter.leaseTTL
        limiter.lease(request) { [self] grant in
            let answered = clock()
            if let grant, settling {
                // Charged. Local limits (no burst: the cells kept their state) until the others have had theirs charged too.
                outageOwed.store(false, ordering: .relaxed)
                freshUntil.store(0, ordering: .relaxed)
                retryAt.store(answered + (grant.settle ?? limiter.settle), ordering: .relaxed)
            } else if let grant {
                // Granted in full yet spent before it arrived: the lease is too small for this key's pace here.
                let dry = requestTokens.load(ordering: .relaxed) <= 0 || cuTokens.load(ordering: .relaxed) <= 0
                if dry, grant.requests >= askRequests, grant.cu >= askCU {
                    let current = scale.load(ordering: .relaxed)
                    if current < 1 << 16 { scale.store(current * 2, ordering: .relaxed) }
                }
                requestTokens.add(grant.requests, ordering: .relaxed)
                cuTokens.add(grant.cu, ordering: .relaxed)
                freshUntil.store(answered + ttl, ordering: .relaxed)
                if grant.requests > 0 || grant.cu > 0 { lastGrantAt.store(answered, ordering: .relaxed) }
                let wait = max(grant.requests == 0 ? grant.requestWait : 0, grant.cu == 0 ? grant.cuWait : 0)
                retryAt.store(answered + wait, ordering: .relaxed)
            } else {
                // The store failed (or another key's probe went first): what was owed stays owed.
                freshUntil.store(0, ordering: .relaxed)
                owe(requests: request.debtRequests, cu: request.debtCU, since: owedSince)
            }
            leasing.store(false, ordering: .releasing)
        }
    }

    private static func take(_ tokens: borrowing Atomic<Int64>, _ amount: Int64) -> Bool {
        var current = tokens.load(ordering: .relaxed)
        while true {
            guard current >= amount else { return false }
            let (exchanged, original) = tokens.compareExchange(expected: current, desired: current - amount, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }
}
