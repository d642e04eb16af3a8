import Synchronization
import TollgateCore

/// The failed-auth limiter shared by every event loop, behind one lock that the common
/// request never takes: while no address is blocked, the check is one relaxed atomic load,
/// and the lock is only taken to count a failure (an unknown or malformed key) or to check
/// an address while some address is blocked.
final class AuthFailureGuard: Sendable {
    private let limiter: Mutex<FailedAuthLimiter>
    private let blocked = Atomic<Int>(0)

    init(settings: FailedAuthLimiter.Settings) {
        limiter = Mutex(FailedAuthLimiter(settings: settings))
    }

    /// Seconds (rounded up) until `address` may try again; nil when it is not blocked.
    func retryAfter(_ address: IPAddress?, now: Int64) -> Int? {
        guard let address, blocked.load(ordering: .relaxed) > 0 else { return nil }
        let nanos = limiter.withLock { limiter in
            let remaining = limiter.blockedFor(address, now: now)
            blocked.store(limiter.blocked, ordering: .relaxed)
            return remaining
        }
        return nanos.map { Int(($0 + 999_999_999) / 1_000_000_000) }
    }

    /// Counts a failure; true when it blocked the address.
    @discardableResult
    func failed(_ address: IPAddress?, now: Int64) -> Bool {
        guard let address else { return false }
        return limiter.withLock { limiter in
            let outcome = limiter.failed(address, now: now)
            blocked.store(limiter.blocked, ordering: .relaxed)
            if case .blocked = outcome { return true }
            return false
        }
    }
}
