import Synchronization
import TollgateCore

/// The bounded hand-over between event loops and the telemetry service.
///
/// Loops push chunks (one lock per chunk of about 64 records, never per request); the service
/// takes everything at once by swapping the array. When the queue is full the rows that do not
/// fit are dropped and counted: the service empties it every flush interval, so that happens
/// only if the service itself is stuck.
public final class TelemetryQueue: TelemetrySink {
    struct State {
        var records: [RequestRecord] = []
        var dropped = 0
        var notified = false
    }

    public let capacity: Int
    /// The consumer is woken early when this many rows are waiting.
    let batchRows: Int
    private let state = Mutex(State())
    private let wakeup = Wakeup()

    public init(capacity: Int, batchRows: Int) {
        self.capacity = capacity
        self.batchRows = batchRows
    }

    /// Returns when `batchRows` are waiting, after `timeout`, or on `wake()`.
    public func waitForBatch(timeout: Duration) async {
        await wakeup.wait(timeout: timeout)
    }

    /// Ends the consumer's current `waitForBatch` now (shutdown, tests).
    public func wake() {
        wakeup.signal()
    }

    public func record(_ records: [RequestRecord]) {
        let notify = state.withLock { state -> Bool in
            let room = capacity - state.records.count
            if records.count <= room {
                state.records.append(contentsOf: records)
            } else {
                if room > 0 { state.records.append(contentsOf: records.prefix(room)) }
                state.dropped += records.count - max(0, room)
            }
            guard !state.notified, state.records.count >= batchRows else { return false }
            state.notified = true
            return true
        }
        if notify { wakeup.signal() }
    }

    /// Everything queued, oldest first, and how many rows were dropped since the last call.
    public func takeAll() -> (records: [RequestRecord], dropped: Int) {
        state.withLock { state in
            let taken = (state.records, state.dropped)
            state.records = []
            state.dropped = 0
            state.notified = false
            return taken
        }
    }

    public var depth: Int { state.withLock { $0.records.count } }
}
