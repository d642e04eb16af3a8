import Synchronization
import Testing
@testable import TollgateCore

/// `withDeadline` answers at its deadline even when the body does not stop when cancelled,
/// which a task group racing a timer cannot do (it waits for every child).
@Suite struct DeadlineTests {
    /// A body that ends only when released: it ignores cancellation, like a hung client call.
    final class Gate: Sendable {
        private let waiter = Mutex<CheckedContinuation<Void, Never>?>(nil)
        private let opened = Mutex(false)
        let cancelled = Atomic(false)
        let finished = Atomic(false)

        func enter() async {
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let now = opened.withLock { opened in
                        if !opened { waiter.withLock { $0 = continuation } }
                        return opened
                    }
                    if now { continuation.resume() }
                }
            } onCancel: {
                cancelled.store(true, ordering: .relaxed)
            }
            finished.store(true, ordering: .relaxed)
        }

        func open() {
            let waiting = opened.withLock { opened in
                opened = true
                return waiter.withLock { waiter in defer { waiter = nil }; return waiter }
            }
            waiting?.resume()
        }
    }

    @Test func aBodyThatIgnoresCancellationDoesNotHoldTheCaller() async throws {
        let gate = Gate()
        await #expect(throws: DeadlineExceeded.self) {
            try await withDeadline(.milliseconds(50)) { await gate.enter(); return 1 }
        }
        // The caller went on while the body still runs; the body was told to stop.
        #expect(await eventually(timeout: .seconds(10)) { gate.cancelled.load(ordering: .relaxed) })
        let finished = gate.finished.load(ordering: .relaxed)
        #expect(!finished)
        gate.open()
    }

    @Test func aBodyInTimeGivesItsResultOrItsError() async throws {
        #expect(try await withDeadline(.seconds(30)) { 42 } == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await withDeadline(.seconds(30)) { () async throws -> Int in throw Refused() }
        }
    }

    @Test func cancellingTheCallerAnswersAtOnceAndStopsTheBody() async throws {
        let gate = Gate()
        let call = Task { try await withDeadline(.seconds(300)) { await gate.enter(); return 1 } }
        call.cancel()
        await #expect(throws: CancellationError.self) { try await call.value }
        gate.open()
    }
}
