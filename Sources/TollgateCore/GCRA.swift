/// The generic cell rate algorithm as a pure function of (stored state, now, cost).
///
/// GCRA keeps one number per key, the theoretical arrival time (TAT), so the shared state is a
/// single 64-bit word that a compare-and-swap can update (locally) or a Lua script can (Redis).
/// It allows `rate` units per second with a burst of `rate * burstSeconds`, smooths instead of
/// resetting at window edges, and yields exact `Retry-After` and `RateLimit-*` values.
public struct GCRA: Sendable, Equatable {
    /// Nanoseconds one unit adds to the TAT.
    public let emissionInterval: Int64
    /// How far the TAT may run ahead of now: the burst, in nanoseconds.
    public let tolerance: Int64
    /// The burst in units, as announced in `RateLimit-Limit`.
    public let limit: Int

    public init(ratePerSecond: Int, burstSeconds: Double = 1) {
        let rate = max(1, ratePerSecond)
        emissionInterval = max(1, 1_000_000_000 / Int64(rate))
        limit = max(1, Int((Double(rate) * burstSeconds).rounded()))
        tolerance = emissionInterval * Int64(limit)
    }

    public enum Decision: Sendable, Equatable {
        /// Admitted: store `newTAT`. `remaining` units are left in the burst; the bucket is full
        /// again after `resetAfter` nanoseconds.
        case allow(newTAT: Int64, remaining: Int, resetAfter: Int64)
        /// Refused: try again after `retryAfter` nanoseconds. Nothing is stored.
        case deny(retryAfter: Int64, resetAfter: Int64)
    }

    /// Decides a request of `cost` units at time `now` against the stored `tat`.
    ///
    /// A cost larger than the whole burst (a big batch on a small plan) is admitted when the
    /// bucket is full and charged in full, so the key then waits it off instead of never passing.
    public func decide(tat storedTAT: Int64, now: Int64, cost: Int) -> Decision {
        let tat = max(storedTAT, now)
        let increment = emissionInterval * Int64(max(0, cost))
        let admissionIncrement = min(increment, tolerance)
        let allowAt = tat + admissionIncrement - tolerance
        if now < allowAt {
            return .deny(retryAfter: allowAt - now, resetAfter: tat - now)
        }
        let newTAT = tat + increment
        let headroom = tolerance - (newTAT - now)
        let remaining = headroom <= 0 ? 0 : Int(headroom / emissionInterval)
        return .allow(newTAT: newTAT, remaining: remaining, resetAfter: newTAT - now)
    }
}
