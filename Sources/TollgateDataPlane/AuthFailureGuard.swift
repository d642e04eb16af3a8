import Synchronization
import TollgateCore

/// The failed-auth limiter shared by every event loop, behind one lock that the common
/// request never takes: while no address is blocked, the check is one relaxed atomic load,
/// and the lock is only taken to count a failure (an unknown or malformed key) or to check
/// an address while some address is blocked.
///
/// With replicas, each failure is also kept for the cluster-wide count (`drainPending`, taken
/// by a background service to Redis), and a block the cluster decides comes back by `block`:
/// so an address that spreads its guesses over N replicas gets the plan's budget, not N times it.
public final class AuthFailureGuard: Sendable {
    private struct State {
        var limiter: FailedAuthLimiter
        /// Failures per address not yet added to the cluster-wide count; nil when not shared.
        var pending: [IPAddress: Int]?
    }

    private let state: Mutex<State>
    private let blocked = Atomic<Int>(0)
    public let settings: FailedAuthLimiter.Settings

    public init(settings: FailedAuthLimiter.Settings) {
        self.settings = settings
        state = Mutex(State(limiter: FailedAuthLimiter(settings: settings)))
    }

    /// Seconds (rounded up) until `address` may try again; nil when it is not blocked.
    func retryAfter(_ address: IPAddress?, now: Int64) -> Int? {
        guard let address, blocked.load(ordering: .relaxed) > 0 else { return nil }
        let nanos = state.withLock { state in
            let remaining = state.limiter.blockedFor(address, now: now)
            blocked.store(state.limiter.blocked, ordering: .relaxed)
            return remaining
        }
        return nanos.map { Int(($0 + 999_999_999) / 1_000_000_000) }
    }

    /// Counts a failure; true when it blocked the address.
    @discardableResult
    func failed(_ address: IPAddress?, now: Int64) -> Bool {
        guard let address else { return false }
        return state.withLock { state in
            let outcome = state.limiter.failed(address, now: now)
            blocked.store(state.limiter.blocked, ordering: .relaxed)
            // Bounded like the limiter's table: past it, new addresses are not counted for the cluster.
            if state.pending != nil, state.pending![address] != nil || state.pending!.count < settings.capacity {
                state.pending![address, default: 0] += 1
            }
            if case .blocked = outcome { return true }
            return false
        }
    }

    /// From now on, failures are kept for the cluster-wide count too.
    public func shareCounts() {
        state.withLock { if $0.pending == nil { $0.pending = [:] } }
    }

    /// The failures per address since the last call.
    public func drainPending() -> [IPAddress: Int] {
        state.withLock { state in
            guard let pending = state.pending, !pending.isEmpty else { return [:] }
            state.pending = [:]
            return pending
        }
    }

    /// Refuses `address` for `nanos` from `now` (a block decided by the cluster-wide count).
    public func block(_ address: IPAddress, for nanos: Int64, now: Int64) {
        state.withLock { state in
            state.limiter.block(address, until: now + nanos, now: now)
            blocked.store(state.limiter.blocked, ordering: .relaxed)
        }
    }
}
