import Synchronization
import Testing
@testable import TollgateCore

/// Monthly usage: flushed deltas, restarts, month boundaries, and retries of batches the store
/// did not confirm (the stores' batch ids are tested on a real PostgreSQL in `PostgresKeyStoreTests`).
@Suite struct QuotaLedgerTests {
    final class Period: Sendable {
        let value = Mutex("2026-11")
    }

    @Test func flushesDeltasAndRestoresFromTheStore() async throws {
        let store = InMemoryKeyStore()
        let ledger = QuotaLedger(store: store, periodNow: { "2026-11" })
        let cell = await ledger.cell(for: 7)
        #expect(cell.charge(30, limit: 100))
        #expect(cell.charge(20, limit: 100))
        try await ledger.flush()
        try await ledger.flush()  // nothing new: nothing added twice
        #expect(try await store.usage(keyID: 7, period: "2026-11") == 50)
        // A new process starts from what the store holds.
        let restarted = await QuotaLedger(store: store, periodNow: { "2026-11" }).cell(for: 7)
        #expect(restarted.spent == 50)
        #expect(!restarted.charge(51, limit: 100))
    }

    @Test func failedFlushKeepsUsageForTheNextTry() async throws {
        let store = InMemoryKeyStore()
        let ledger = QuotaLedger(store: store, periodNow: { "2026-11" })
        let cell = await ledger.cell(for: 1)
        _ = cell.charge(10, limit: nil)
        store.setFailing(true)
        await #expect(throws: KeyStoreUnavailable.self) { try await ledger.flush() }
        store.setFailing(false)
        try await ledger.flush()
        #expect(try await store.usage(keyID: 1, period: "2026-11") == 10)
    }

    @Test func monthBoundaryStartsAtZero() async throws {
        let store = InMemoryKeyStore()
        let period = Period()
        let ledger = QuotaLedger(store: store, periodNow: { period.value.withLock { $0 } })
        let cell = await ledger.cell(for: 3)
        _ = cell.charge(90, limit: 100)
        period.value.withLock { $0 = "2026-12" }
        try await ledger.flush()
        #expect(try await store.usage(keyID: 3, period: "2026-11") == 90)
        #expect(cell.spent == 0)
        #expect(cell.charge(100, limit: 100))
        try await ledger.flush()
        #expect(try await store.usage(keyID: 3, period: "2026-12") == 100)
    }

    /// Shared counters in memory: what Redis does in `RedisQuotaCounter`.
    final class Counters: SharedQuotaCounter {
        let values = Mutex<[String: Int64]>([:])
        func sync(_ deltas: [Int64: Int64], floors: [Int64: Int64], period: String) async throws -> [Int64: Int64] {
            values.withLock { values in
                var totals: [Int64: Int64] = [:]
                for (keyID, delta) in deltas {
                    let key = "\(keyID):\(period)"
                    values[key] = max(values[key, default: 0] + delta, floors[keyID] ?? 0)
                    totals[keyID] = values[key]
                }
                return totals
            }
        }
        func current(keyID: Int64, period: String) async throws -> Int64? { values.withLock { $0["\(keyID):\(period)"] } }
    }

    @Test func aNewMonthsSharedCounterDoesNotInheritTheOldMonthsTotal() async throws {
        let store = InMemoryKeyStore()
        let counters = Counters()
        let period = Period()
        let ledger = QuotaLedger(store: store, shared: counters, periodNow: { period.value.withLock { $0 } })
        let cell = await ledger.cell(for: 3)
        _ = cell.charge(90, limit: nil)
        try await ledger.flush()
        #expect(try await counters.current(keyID: 3, period: "2026-11") == 90)
        period.value.withLock { $0 = "2026-12" }
        try await ledger.flush()
        _ = cell.charge(10, limit: nil)
        try await ledger.flush()
        #expect(try await counters.current(keyID: 3, period: "2026-12") == 10)
        #expect(cell.spent == 10)
    }

    /// Refuses every batch that counts `poison`; stores the rest.
    final class RefusingStore: QuotaStore {
        let poison: Int64
        let stored = Mutex<[Int64: Int64]>([:])
        let attempts = Mutex<[[Int64]]>([])
        init(poison: Int64) { self.poison = poison }

        struct Refused: Error {}

        func usage(keyID: Int64, period: String) async throws -> Int64 { stored.withLock { $0[keyID] ?? 0 } }
        func add(_ amounts: [Int64: Int64], period: String) async throws {
            attempts.withLock { $0.append(amounts.keys.sorted()) }
            if amounts[poison] != nil { throw Refused() }
            stored.withLock { stored in for (key, amount) in amounts { stored[key, default: 0] += amount } }
        }
    }

    @Test func aBatchTheStoreKeepsRefusingHoldsBackNoOther() async throws {
        let store = RefusingStore(poison: 1)
        let ledger = QuotaLedger(store: store, periodNow: { "2026-12" })
        let poisoned = await ledger.cell(for: 1)
        let healthy = await ledger.cell(for: 2)
        #expect(poisoned.charge(5, limit: nil))
        await #expect(throws: RefusingStore.Refused.self) { try await ledger.flush() }
        #expect(ledger.unconfirmedBatches == 1)

        // Every later round: the newer batch is tried first, and lands.
        for round in 1...3 {
            #expect(healthy.charge(10, limit: nil))
            await #expect(throws: RefusingStore.Refused.self) { try await ledger.flush() }
            #expect(try await store.usage(keyID: 2, period: "2026-12") == Int64(10 * round))
            #expect(ledger.unconfirmedBatches == 1)
        }
        #expect(try await store.usage(keyID: 1, period: "2026-12") == 0)
        // The refused batch was tried once per round, after the newer one, and kept.
        #expect(store.attempts.withLock { $0 } == [[1], [2], [1], [2], [1], [2], [1]])
    }
}
