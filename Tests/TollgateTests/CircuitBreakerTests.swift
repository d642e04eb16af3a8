import Testing
@testable import TollgateCore

@Suite struct CircuitBreakerTests {
    let second: Int64 = 1_000_000_000

    @Test func consecutiveFailuresOpenThenCoolDownHalfOpensThenSuccessesClose() {
        var breaker = CircuitBreaker(settings: .init(consecutiveFailures: 3, coolDown: .seconds(5), probes: 2, successesToClose: 2))
        let t0 = 100 * second
        for _ in 0..<2 {
            #expect(breaker.admit(now: t0).admitted)
            #expect(breaker.record(success: false, now: t0) == nil)
        }
        #expect(breaker.record(success: true, now: t0) == nil)  // a success resets the run
        for _ in 0..<2 { #expect(breaker.record(success: false, now: t0) == nil) }
        #expect(breaker.record(success: false, now: t0) == .opened)
        #expect(breaker.state == .open(until: t0 + 5 * second))
        #expect(breaker.admit(now: t0 + 4 * second) == (false, nil))
        #expect(!breaker.wouldAdmit(now: t0 + 4 * second))
        // Cool-down over: probes, at most two at a time.
        #expect(breaker.admit(now: t0 + 5 * second) == (true, .halfOpened))
        #expect(breaker.admit(now: t0 + 5 * second) == (true, nil))
        #expect(breaker.admit(now: t0 + 5 * second) == (false, nil))
        #expect(breaker.record(success: true, now: t0 + 5 * second) == nil)
        #expect(breaker.record(success: true, now: t0 + 5 * second) == .closed)
        #expect(breaker.state == .closed)
    }

    @Test func aCancelledProbeGivesItsSlotBack() {
        var breaker = CircuitBreaker(settings: .init(consecutiveFailures: 1, coolDown: .seconds(1), probes: 1))
        _ = breaker.record(success: false, now: 0)
        #expect(breaker.admit(now: second).admitted)
        #expect(!breaker.admit(now: second).admitted)  // the only probe slot is taken
        breaker.release()
        #expect(breaker.admit(now: second).admitted)
    }

    @Test func aFailedProbeReopens() {
        var breaker = CircuitBreaker(settings: .init(consecutiveFailures: 1, coolDown: .seconds(1)))
        _ = breaker.record(success: false, now: 0)
        #expect(breaker.admit(now: second).transition == .halfOpened)
        #expect(breaker.record(success: false, now: second) == .opened)
        #expect(breaker.state == .open(until: 2 * second))
    }

    @Test func failureRateInTheWindowOpens() {
        var breaker = CircuitBreaker(settings: .init(consecutiveFailures: 100, failureRate: 0.5, minimumRequests: 10, windowSeconds: 10))
        // Alternate success and failure: never 100 in a row, but half fail.
        var transition: CircuitBreaker.Transition?
        var recorded = 0
        while transition == nil && recorded < 50 {
            transition = breaker.record(success: recorded % 2 == 0, now: 50 * second + Int64(recorded) * 10_000_000)
            recorded += 1
        }
        #expect(transition == .opened)
        #expect(recorded == 10)
    }

    @Test func oldFailuresLeaveTheWindow() {
        var breaker = CircuitBreaker(settings: .init(consecutiveFailures: 100, failureRate: 0.5, minimumRequests: 10, windowSeconds: 5))
        for index in 0..<9 { _ = breaker.record(success: false, now: 10 * second + Int64(index)) }
        // Six seconds later those nine are outside the window: nine new successes and one failure do not trip it.
        for index in 0..<9 { #expect(breaker.record(success: true, now: 16 * second + Int64(index)) == nil) }
        #expect(breaker.record(success: false, now: 16 * second + 10) == nil)
        #expect(breaker.state == .closed)
    }
}

@Suite struct RetryBudgetTests {
    @Test func retriesAreAShareOfRequestsPlusAFloor() {
        var budget = RetryBudget(ratio: 0.2, minimumPerSecond: 1, windowSeconds: 10)
        let now: Int64 = 100_000_000_000
        for _ in 0..<100 { budget.recordRequest(now: now) }
        var granted = 0
        while budget.tryRetry(now: now) { granted += 1 }
        #expect(granted == 20 + 10)
        // Eleven seconds on, the window has emptied: only the floor is left.
        var later = 0
        while budget.tryRetry(now: now + 11_000_000_000) { later += 1 }
        #expect(later == 10)
    }
}

@Suite struct PeakEWMATests {
    @Test func jumpsToSlowSamplesAndDecaysBack() {
        var ewma = PeakEWMA(decay: .seconds(10), initial: .milliseconds(1), now: 0)
        ewma.observe(.milliseconds(200), now: 1_000_000_000)
        #expect(ewma.cost == 200_000_000)
        ewma.observe(.milliseconds(1), now: 2_000_000_000)
        #expect(ewma.cost > 150_000_000)  // one fast sample a second later barely moves it
        for step in 3...60 { ewma.observe(.milliseconds(1), now: Int64(step) * 1_000_000_000) }
        #expect(ewma.cost < 2_000_000)  // a minute of fast answers brings it back
    }
}

@Suite struct PeakEWMAPenaltyTests {
    @Test func aPenaltyFadesInSecondsWhileLatencyFadesSlowly() {
        let second: Int64 = 1_000_000_000
        var ewma = PeakEWMA(decay: .seconds(10), initial: .microseconds(200), now: 0)
        ewma.penalize(.milliseconds(250), now: second)
        #expect(ewma.current(now: second) > 250_000_000)
        #expect(ewma.current(now: 5 * second) < 1_000_000)  // four seconds later: a fair competitor again
        // Failures in a burst do not pile up.
        for step in 0..<10 { ewma.penalize(.milliseconds(250), now: 5 * second + Int64(step)) }
        #expect(ewma.current(now: 5 * second + 10) < 260_000_000)
        ewma.reset(to: .microseconds(300), now: 9 * second)
        #expect(ewma.current(now: 9 * second) == 300_000)
    }
}
