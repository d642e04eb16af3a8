import Synchronization

/// One key's compute units spent this month, shared by every event loop.
///
/// `used` answers "is the quota spent?" on the hot path with one atomic load and add;
/// `unflushed` holds what the store has not yet heard of, drained by the flusher.
///
/// With replicas, a cell learns what the others spent only when the ledger flushes, so a key
/// spent everywhere at once can pass its quota by what the cluster spends between flushes. To
/// bound that by the quota instead of by traffic, a cell whose unflushed units reach 1/2048 of
/// its quota wakes the flusher (`flushSignal`) at once: each replica then lags the others by at
/// most a few of those slices, about 0.1 % of the quota each, however fast the key is spent.
public final class QuotaCell: Sendable {
    public let keyID: Int64
    private let used: Atomic<Int64>
    private let unflushed = Atomic<Int64>(0)
    private let flushSignal: Wakeup?

    /// - Parameter flushSignal: woken when the unflushed units pass the quota's slice; nil where
    ///   this process is the only one counting (the embedded shape).
    public init(keyID: Int64, used: Int64, flushSignal: Wakeup? = nil) {
        self.keyID = keyID
        self.used = Atomic(used)
        self.flushSignal = flushSignal
    }

    /// The unflushed units at which a cell asks for a flush: 1/2048 of the quota, at least 1.
    @inline(__always)
    static func slice(of limit: Int64) -> Int64 { max(1, limit >> 11) }

    public var spent: Int64 { used.load(ordering: .relaxed) }

    /// Charges `cost` unless that would pass `limit`; false means the month's budget is spent.
    public func charge(_ cost: Int, limit: Int64?) -> Bool {
        let amount = Int64(cost)
        if let limit {
            var current = used.load(ordering: .relaxed)
            while true {
                guard current + amount <= limit else { return false }
                let (exchanged, original) = used.compareExchange(
                    expected: current, desired: current + amount, ordering: .relaxed)
                if exchanged { break }
                current = original
            }
        } else {
            used.add(amount, ordering: .relaxed)
        }
        let pending = unflushed.add(amount, ordering: .relaxed).newValue
        if let limit, let flushSignal {
            let slice = Self.slice(of: limit)
            if pending >= slice, pending - amount < slice { flushSignal.signal() }
        }
        return true
    }

    /// Takes the units not yet persisted; the ledger keeps them in a batch until the store has them.
    public func drainUnflushed() -> Int64 { unflushed.exchange(0, ordering: .relaxed) }

    /// Adds what other replicas spent (learned from the shared counters); never lowers the count.
    public func raise(by amount: Int64) {
        if amount > 0 { used.add(amount, ordering: .relaxed) }
    }

    /// Starts a new period: the stored total for it becomes the baseline.
    public func reset(to value: Int64) {
        used.store(value, ordering: .relaxed)
        unflushed.store(0, ordering: .relaxed)
    }
}
