import Testing
@testable import TollgateCore

@Suite struct GCRATests {
    let second: Int64 = 1_000_000_000

    @Test func admitsTheBurstThenRefusesWithExactRetry() {
        let gcra = GCRA(ratePerSecond: 10)  // 100 ms per unit, burst 10
        var tat: Int64 = 0
        let now: Int64 = 50 * second
        for expectedRemaining in (0..<10).reversed() {
            guard case .allow(let newTAT, let remaining, _) = gcra.decide(tat: tat, now: now, cost: 1) else {
                Issue.record("refused inside the burst")
                return
            }
            #expect(remaining == expectedRemaining)
            tat = newTAT
        }
        #expect(gcra.decide(tat: tat, now: now, cost: 1) == .deny(retryAfter: 100_000_000, resetAfter: second))
        // One emission interval later exactly one more unit fits.
        guard case .allow = gcra.decide(tat: tat, now: now + 100_000_000, cost: 1) else {
            Issue.record("not admitted after the retry interval")
            return
        }
    }

    @Test func costIsChargedInUnits() {
        let gcra = GCRA(ratePerSecond: 500)
        guard case .allow(let tat, let remaining, _) = gcra.decide(tat: 0, now: second, cost: 260) else {
            Issue.record("refused")
            return
        }
        #expect(remaining == 240)
        guard case .deny = gcra.decide(tat: tat, now: second, cost: 260) else {
            Issue.record("second 260-CU call fit in a 500 burst")
            return
        }
    }

    @Test func costAboveBurstPassesWhenFullAndIsWaitedOff() {
        let gcra = GCRA(ratePerSecond: 100)
        guard case .allow(let tat, 0, _) = gcra.decide(tat: 0, now: second, cost: 300) else {
            Issue.record("an over-burst request never passes")
            return
        }
        // 300 units at 100/s: the key is in debt for two more seconds.
        guard case .deny(let retryAfter, _) = gcra.decide(tat: tat, now: second, cost: 1) else {
            Issue.record("debt ignored")
            return
        }
        #expect(retryAfter == 2 * second + 10_000_000)
    }

    @Test func zeroCostAlwaysPasses() {
        let gcra = GCRA(ratePerSecond: 1)
        guard case .allow(let tat, _, _) = gcra.decide(tat: 0, now: second, cost: 1) else { return }
        guard case .allow = gcra.decide(tat: tat, now: second, cost: 0) else {
            Issue.record("a free method was limited")
            return
        }
    }

    @Test func burstSecondsScaleTheLimit() {
        #expect(GCRA(ratePerSecond: 50, burstSeconds: 2).limit == 100)
        #expect(GCRA(ratePerSecond: 50).limit == 50)
    }

    @Test func cellRefundsAndSharesStateAcrossThreads() async {
        let cell = RateLimitCell()
        let gcra = GCRA(ratePerSecond: 1000)
        let now: Int64 = 10 * second
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    var count = 0
                    for _ in 0..<500 { if case .allow = cell.acquire(gcra, cost: 1, now: now) { count += 1 } }
                    return count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 1000)  // exactly the burst, never more, under contention
        cell.refund(gcra, cost: 10)
        var again = 0
        for _ in 0..<20 { if case .allow = cell.acquire(gcra, cost: 1, now: now) { again += 1 } }
        #expect(again == 10)
    }
}

@Suite struct AdmissionTests {
    func context(cu: Int, rps: Int, monthly: Int64?) -> KeyContext {
        let plan = Plan(name: "p", cuPerSecond: cu, requestsPerSecond: rps, monthlyCU: monthly, maxBodyBytes: 1000, maxBatch: 10)
        let record = APIKeyRecord(id: 1, prefix: "tg_x", hash: KeyHash(key: "k"), plan: "p", createdAt: 0)
        return KeyContext(record: record, plan: plan, cells: KeyCells(cu: RateLimitCell(), requests: RateLimitCell(), quota: QuotaCell(keyID: 1, used: 0)))
    }

    @Test func requestLimitBeforeCULimit() {
        let key = context(cu: 1000, rps: 2, monthly: nil)
        #expect(key.admit(calls: 2, cu: 10, now: 1_000_000_000) == .admitted(limit: 1000, remaining: 990, resetAfter: 10_000_000))
        guard case .rateLimited(kind: "requests", _, _, _) = key.admit(calls: 1, cu: 10, now: 1_000_000_000) else {
            Issue.record("request limit not applied")
            return
        }
    }

    @Test func cuRefusalRefundsTheRequestCharge() {
        let key = context(cu: 10, rps: 2, monthly: nil)
        let now: Int64 = 5_000_000_000
        guard case .admitted = key.admit(calls: 1, cu: 10, now: now) else { Issue.record("first refused"); return }
        guard case .rateLimited(kind: "cu", _, _, _) = key.admit(calls: 1, cu: 5, now: now) else {
            Issue.record("CU limit not applied")
            return
        }
        // The refused call gave its request slot back: one more free call still fits in 2 rps.
        guard case .admitted = key.admit(calls: 1, cu: 0, now: now) else { Issue.record("request slot leaked"); return }
        guard case .rateLimited(kind: "requests", _, _, _) = key.admit(calls: 1, cu: 0, now: now) else {
            Issue.record("request limit not applied")
            return
        }
    }

    @Test func quotaIsExactAndRefundsRateLimits() {
        let key = context(cu: 1_000_000, rps: 1_000_000, monthly: 100)
        #expect(key.admit(calls: 1, cu: 60, now: 1) != .quotaExhausted(limit: 100))
        #expect(key.admit(calls: 1, cu: 60, now: 1) == .quotaExhausted(limit: 100))
        #expect(key.admit(calls: 1, cu: 40, now: 1) != .quotaExhausted(limit: 100))
        #expect(key.quota.spent == 100)
        #expect(key.admit(calls: 1, cu: 1, now: 1) == .quotaExhausted(limit: 100))
    }
}
