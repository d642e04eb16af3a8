/// When to ask the CA for a certificate, as a pure decision on times (seconds since 1970),
/// so it is tested without a clock: a missing certificate (or a placeholder) at once; a good
/// one when a third of its lifetime is left (Let's Encrypt's 90 days: 30 days before expiry),
/// or `renewBefore` before expiry when that is set; after a failed attempt, again after a
/// backoff that doubles from `firstRetry` up to `maxRetry`, but never later than an hour before
/// expiry.
public struct RenewalSchedule: Sendable, Equatable {
    public var renewBefore: Double?
    public var firstRetry: Double = 60
    public var maxRetry: Double = 3_600

    public init(renewBefore: Double? = nil) { self.renewBefore = renewBefore }

    /// The certificate served now: its validity, or nil for none (or a placeholder).
    public struct Current: Sendable, Equatable {
        public var notBefore: Double
        public var notAfter: Double
        public init(notBefore: Double, notAfter: Double) {
            self.notBefore = notBefore
            self.notAfter = notAfter
        }
    }

    /// The time of the next attempt. `failures`: attempts failed in a row since the last success.
    public func nextAttempt(current: Current?, failures: Int, lastAttempt: Double?, now: Double) -> Double {
        guard let current else {
            guard failures > 0, let lastAttempt else { return now }
            return lastAttempt + backoff(failures)
        }
        let lifetime = max(0, current.notAfter - current.notBefore)
        let due = current.notAfter - (renewBefore ?? lifetime / 3)
        guard failures > 0, let lastAttempt else { return due }
        let retry = lastAttempt + backoff(failures)
        return max(due, min(retry, current.notAfter - 3_600))
    }

    func backoff(_ failures: Int) -> Double {
        min(maxRetry, firstRetry * Double(1 << min(failures - 1, 20)))
    }
}
