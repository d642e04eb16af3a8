import Testing
@testable import TollgateCore

/// A quota cell asks for a flush when it has counted a slice (1/2048) of the quota, once per slice.
@Suite struct QuotaCellTests {
    @Test func aSliceOfTheQuotaWakesTheFlusherOncePerSlice() async {
        let signal = Wakeup()
        let cell = QuotaCell(keyID: 1, used: 0, flushSignal: signal)
        let quota: Int64 = 204_800  // a slice is 100 units
        #expect(QuotaCell.slice(of: quota) == 100)
        for _ in 0..<9 { #expect(cell.charge(10, limit: quota)) }
        #expect(!(await woken(signal)))
        #expect(cell.charge(10, limit: quota))  // 100 unflushed: the slice
        #expect(await woken(signal))
        #expect(cell.charge(10, limit: quota))  // past it, still unflushed: no second wake-up
        #expect(!(await woken(signal)))
        // Drained by a flush, the count starts again.
        #expect(cell.drainUnflushed() == 110)
        for _ in 0..<10 { #expect(cell.charge(10, limit: quota)) }
        #expect(await woken(signal))
    }

    @Test func withoutAQuotaOrASignalNothingWakes() async {
        let signal = Wakeup()
        let unlimited = QuotaCell(keyID: 1, used: 0, flushSignal: signal)
        for _ in 0..<1_000 { #expect(unlimited.charge(1_000, limit: nil)) }
        #expect(!(await woken(signal)))
        // A tiny quota's slice is one unit; a refused charge counts nothing and wakes nothing.
        let tiny = QuotaCell(keyID: 2, used: 0, flushSignal: signal)
        #expect(tiny.charge(5, limit: 5))
        #expect(await woken(signal))
        #expect(!tiny.charge(1, limit: 5))
        #expect(!(await woken(signal)))
    }

    @Test func onlyALedgerWithSharedCountersGivesItsCellsTheSignal() async {
        let alone = QuotaLedger(store: nil)
        let cell = await alone.cell(for: 1)
        #expect(cell.charge(1_000, limit: 1_000))
        #expect(!(await woken(alone.flushSignal)))
    }

    /// Whether `signal` was signalled (a remembered signal returns at once; 50 ms is the bound
    /// for "not", as the waits are on memory, not on another process).
    func woken(_ signal: Wakeup) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await signal.wait(); return !Task.isCancelled }
            group.addTask { try? await Task.sleep(for: .milliseconds(50)); return false }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
    }
}
