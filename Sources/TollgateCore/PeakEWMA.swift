#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A node's latency as the balancer sees it: an exponentially weighted moving average that
/// jumps up to any slower sample at once ("peak") and decays back over `decay`.
///
/// Jumping up at once is what makes power-of-two-choices route away from a node that has just
/// turned slow, instead of waiting for an average to catch up (the Finagle/linkerd choice).
public struct PeakEWMA: Sendable, Equatable {
    public let decay: Duration
    /// Nanoseconds.
    public private(set) var cost: Double
    private var stamp: Int64
    /// A failure's extra cost, nanoseconds; decays over `penaltyDecay`, much faster than
    /// latency: a failing node loses traffic for a few seconds, not minutes. Failures do not
    /// add up (a flapping node would otherwise be exiled for long): persistent failure is the
    /// circuit breaker's business.
    private var penalty: Double = 0
    private var penaltyStamp: Int64 = 0
    public static let penaltyDecay: Duration = .milliseconds(500)

    /// - Parameter initial: the cost of a node never measured; start optimistic but not zero, so
    ///   a new node gets traffic without being flooded.
    public init(decay: Duration = .seconds(10), initial: Duration = .milliseconds(1), now: Int64 = 0) {
        self.decay = decay
        self.cost = Double(initial.nanoseconds)
        self.stamp = now
    }

    public mutating func observe(_ rtt: Duration, now: Int64) {
        let sample = Double(rtt.nanoseconds)
        if sample > cost {
            cost = sample
        } else {
            let elapsed = Double(max(0, now - stamp))
            let weight = exp(-elapsed / Double(decay.nanoseconds))
            cost = cost * weight + sample * (1 - weight)
        }
        stamp = max(stamp, now)
    }

    /// The cost as of `now`: it decays while nothing is observed, so a node that was penalised
    /// and then left alone is tried again instead of being shunned forever.
    public func current(now: Int64) -> Double {
        let elapsed = Double(max(0, now - stamp))
        let sincePenalty = Double(max(0, now - penaltyStamp))
        return cost * exp(-elapsed / Double(decay.nanoseconds))
            + penalty * exp(-sincePenalty / Double(Self.penaltyDecay.nanoseconds))
    }

    /// Counts a failure as `amount` of extra latency, decaying over `penaltyDecay`.
    public mutating func penalize(_ amount: Duration, now: Int64) {
        let remaining = penalty * exp(-Double(max(0, now - penaltyStamp)) / Double(Self.penaltyDecay.nanoseconds))
        penalty = max(remaining, Double(amount.nanoseconds))
        penaltyStamp = now
    }

    /// Starts afresh from one sample (a node whose circuit just closed).
    public mutating func reset(to rtt: Duration, now: Int64) {
        cost = Double(rtt.nanoseconds)
        stamp = now
        penalty = 0
    }
}
