/// Decides where each telemetry batch goes and when the spool is replayed. Pure: the service
/// feeds it events and performs what it answers, so the rules are tested without ClickHouse,
/// disks or clocks.
///
/// Rules:
/// - a new batch is sent from memory while ClickHouse is healthy and nothing is spooled, with
///   up to `maxPending` batches waiting behind the one in flight; otherwise it is appended to
///   the spool, behind what is already there;
/// - when a batch sent from memory fails, it and the batches waiting behind it go to the spool
///   in their order, so replay keeps the order they were made in;
/// - the spool is replayed oldest first whenever the sender is free and not backing off;
/// - a failed send backs off exponentially (`base · 2^(n-1)`, capped at `max`) with jitter
///   (half fixed, half random), and the batch goes to the spool;
/// - after `stop`, pending work finishes and the spool waits for the next start.
public struct TelemetryShipper: Sendable {
    public enum Route: Equatable, Sendable { case send, spool }

    public enum Work: Equatable, Sendable {
        /// Send the batch handed over by `batchReady() == .send`.
        case sendPending
        /// Send the spool's oldest batch (call `spoolWasEmpty()` if there is none).
        case replay
        /// Nothing to do until the deadline (monotonic nanoseconds), or until woken.
        case wait(until: Int64?)
        /// Stopped and idle: the sender may return.
        case stop
    }

    /// Batches handed over for sending from memory, not yet taken by the sender.
    public private(set) var pending = 0
    public let maxPending: Int
    public private(set) var spoolHasBatches: Bool
    public private(set) var busy = false
    public private(set) var failures = 0
    public private(set) var retryAt: Int64?
    public private(set) var stopping = false
    let backoffBase: Int64
    let backoffMax: Int64

    public init(spoolHasBatches: Bool, backoffBase: Int64, backoffMax: Int64, maxPending: Int = 4) {
        self.spoolHasBatches = spoolHasBatches
        self.maxPending = max(1, maxPending)
        self.backoffBase = backoffBase
        self.backoffMax = backoffMax
    }

    public mutating func batchReady() -> Route {
        if pending < maxPending, !spoolHasBatches, failures == 0, !stopping {
            pending += 1
            return .send
        }
        spoolHasBatches = true
        return .spool
    }

    public mutating func nextWork(now: Int64) -> Work {
        if busy { return .wait(until: nil) }
        if pending > 0 {
            pending -= 1
            busy = true
            return .sendPending
        }
        if spoolHasBatches, !stopping {
            if let retryAt, now < retryAt { return .wait(until: retryAt) }
            busy = true
            return .replay
        }
        return stopping ? .stop : .wait(until: nil)
    }

    /// A `.replay` found the spool empty.
    public mutating func spoolWasEmpty() {
        busy = false
        spoolHasBatches = false
    }

    /// A send finished. `jitter` in 0...1 (random in production, fixed in tests).
    public mutating func sendFinished(success: Bool, now: Int64, jitter: Double) {
        busy = false
        if success {
            failures = 0
            retryAt = nil
        } else {
            failures += 1
            retryAt = now + backoff(failures: failures, jitter: jitter)
        }
    }

    /// A batch sent from memory failed: it and every batch waiting behind it were appended to
    /// the spool, in order.
    public mutating func failedBatchSpooled() {
        pending = 0
        spoolHasBatches = true
    }

    public mutating func stop() {
        stopping = true
    }

    /// The delay after `failures` consecutive failures: exponential, capped, half of it random.
    public func backoff(failures: Int, jitter: Double) -> Int64 {
        Self.backoff(failures: failures, jitter: jitter, base: backoffBase, max: backoffMax)
    }

    /// The same rule for callers without a shipper (retries within one batch's send).
    public static func backoff(failures: Int, jitter: Double, base: Int64, max backoffMax: Int64) -> Int64 {
        let exponent = min(Swift.max(failures - 1, 0), 30)
        let full = min(backoffMax, base.multipliedReportingOverflow(by: Int64(1) << exponent).partialValue)
        let ceiling = full <= 0 ? backoffMax : full
        return ceiling / 2 + Int64(Double(ceiling / 2) * min(max(jitter, 0), 1))
    }
}
