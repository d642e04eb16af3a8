import Testing
@testable import TollgateClickHouse

@Suite struct TelemetryShipperTests {
    let ms: Int64 = 1_000_000

    func shipper(spooled: Bool = false) -> TelemetryShipper {
        TelemetryShipper(spoolHasBatches: spooled, backoffBase: 100 * ms, backoffMax: 1_000 * ms)
    }

    @Test func aHealthySinkSendsFromMemoryAndHoldsAFewBatchesWhileBusy() {
        var s = TelemetryShipper(spoolHasBatches: false, backoffBase: 100 * ms, backoffMax: 1_000 * ms, maxPending: 2)
        #expect(s.batchReady() == .send)
        #expect(s.nextWork(now: 0) == .sendPending)
        // Two more batches may wait in memory while the first is in flight...
        #expect(s.batchReady() == .send)
        #expect(s.batchReady() == .send)
        // ...the next goes to disk rather than growing memory.
        #expect(s.batchReady() == .spool)
        #expect(s.nextWork(now: 0) == .wait(until: nil))
        s.sendFinished(success: true, now: 0, jitter: 0)
        #expect(s.nextWork(now: 0) == .sendPending)
        s.sendFinished(success: true, now: 0, jitter: 0)
        #expect(s.nextWork(now: 0) == .sendPending)
        s.sendFinished(success: true, now: 0, jitter: 0)
        #expect(s.nextWork(now: 0) == .replay)
    }

    @Test func aFailedBatchTakesTheBatchesWaitingBehindItToTheSpool() {
        var s = shipper()
        #expect(s.batchReady() == .send)
        #expect(s.nextWork(now: 0) == .sendPending)
        #expect(s.batchReady() == .send)
        #expect(s.pending == 1)
        s.sendFinished(success: false, now: 0, jitter: 0)
        s.failedBatchSpooled()
        #expect(s.pending == 0)
        #expect(s.batchReady() == .spool)
        #expect(s.nextWork(now: 0) == .wait(until: 50 * ms))
    }

    @Test func aFailureSpoolsAndBacksOffExponentiallyWithCap() {
        var s = shipper()
        #expect(s.batchReady() == .send)
        #expect(s.nextWork(now: 0) == .sendPending)
        s.sendFinished(success: false, now: 0, jitter: 1)
        s.failedBatchSpooled()
        // While down, new batches queue behind the spool.
        #expect(s.batchReady() == .spool)
        #expect(s.nextWork(now: 50 * ms) == .wait(until: 100 * ms))
        #expect(s.nextWork(now: 100 * ms) == .replay)
        s.sendFinished(success: false, now: 100 * ms, jitter: 1)
        #expect(s.nextWork(now: 100 * ms) == .wait(until: 300 * ms))
        #expect(s.backoff(failures: 10, jitter: 1) == 1_000 * ms)
        #expect(s.backoff(failures: 10, jitter: 0) == 500 * ms)
        #expect(s.backoff(failures: 80, jitter: 0.5) <= 1_000 * ms)
    }

    @Test func recoveryReplaysTheSpoolBeforeSendingFromMemoryAgain() {
        var s = shipper(spooled: true)
        // Restarted with a spool: new batches go behind it.
        #expect(s.batchReady() == .spool)
        #expect(s.nextWork(now: 0) == .replay)
        s.sendFinished(success: true, now: 0, jitter: 0)
        #expect(s.nextWork(now: 0) == .replay)
        s.spoolWasEmpty()
        #expect(s.batchReady() == .send)
        #expect(s.nextWork(now: 0) == .sendPending)
    }

    @Test func stopFinishesPendingWorkAndLeavesTheSpoolForNextTime() {
        var s = shipper()
        #expect(s.batchReady() == .send)
        s.stop()
        #expect(s.batchReady() == .spool)
        #expect(s.nextWork(now: 0) == .sendPending)
        #expect(s.nextWork(now: 0) == .wait(until: nil))
        s.sendFinished(success: true, now: 0, jitter: 0)
        #expect(s.nextWork(now: 0) == .stop)
    }
}
