import Testing
@testable import TollgateApp
import TollgateCore

/// A flush round that does not end is reported: the replica's usage is then reaching neither
/// the store nor the other replicas, and nothing else would say so.
struct QuotaFlushServiceTests {
    /// Answers `usage` at once; every add waits until the gate opens.
    final class HangingStore: QuotaStore {
        let gate: DeadlineTests.Gate
        init(gate: DeadlineTests.Gate) { self.gate = gate }
        func usage(keyID: Int64, period: String) async throws -> Int64 { 0 }
        func add(_ amounts: [Int64: Int64], period: String) async throws { await gate.enter() }
    }

    @Test func aRoundThatDoesNotEndIsLoggedAsStalled() async throws {
        let gate = DeadlineTests.Gate()
        let lines = ShutdownWatchTests.Lines()
        let ledger = QuotaLedger(store: HangingStore(gate: gate), periodNow: { "2026-12" })
        #expect(await ledger.cell(for: 1).charge(5, limit: nil))
        let service = QuotaFlushService(ledger: ledger, interval: .milliseconds(20), logger: lines.logger, stallAfter: .milliseconds(100))
        let running = Task { try await service.run() }
        let stalled = await eventually(timeout: .seconds(20)) {
            lines.lines.withLock { $0.contains { $0.hasPrefix("usage flush stalled") } }
        }
        #expect(stalled)
        // Released, the round ends and the service stops when cancelled.
        gate.open()
        running.cancel()
        try await running.value
    }
}
