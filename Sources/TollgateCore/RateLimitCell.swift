import Synchronization

/// One key's GCRA state shared by every event loop, updated lock-free.
///
/// The decision is the pure `GCRA.decide`; this wrapper only retries the compare-and-swap when
/// another thread moved the TAT in between, so a request never waits on a lock.
public final class RateLimitCell: Sendable {
    private let tat = Atomic<Int64>(0)

    public init() {}

    public func acquire(_ gcra: GCRA, cost: Int, now: Int64) -> GCRA.Decision {
        var current = tat.load(ordering: .relaxed)
        while true {
            let decision = gcra.decide(tat: current, now: now, cost: cost)
            guard case .allow(let newTAT, _, _) = decision else { return decision }
            let (exchanged, original) = tat.compareExchange(
                expected: current, desired: newTAT, ordering: .relaxed)
            if exchanged { return decision }
            current = original
        }
    }

    /// Leaves one unit of the burst: the key admits at its rate from `now` on, with no burst
    /// (a fallback that starts where the shared bucket's burst was being used).
    public func drain(_ gcra: GCRA, now: Int64) {
        let floor = now + gcra.tolerance - gcra.emissionInterval
        var current = tat.load(ordering: .relaxed)
        while current < floor {
            let (exchanged, original) = tat.compareExchange(expected: current, desired: floor, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Undoes part of an admission (the CU of a request refused by a later check).
    public func refund(_ gcra: GCRA, cost: Int) {
        _ = tat.subtract(gcra.emissionInterval * Int64(cost), ordering: .relaxed)
    }
}
