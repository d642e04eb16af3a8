import Synchronization

/// The last answer of each backend probe, kept for `/readyz` and `/status`.
///
/// Readiness is read from here, never by asking a backend: a load balancer times its checks out
/// (HAProxy and Kubernetes default to 1 s), and a check that waits on a dead PostgreSQL takes
/// every replica out of rotation at once, turning degraded service into none.
final class BackendStatus: Sendable {
    private let state = Mutex<[String: Bool]>([:])

    /// Records a probe's answer; returns the previous one (nil before the first).
    @discardableResult
    func record(_ backend: String, up: Bool) -> Bool? {
        state.withLock { state in
            let before = state[backend]
            state[backend] = up
            return before
        }
    }

    /// The last probe's answer; nil before the first.
    func probed(_ backend: String) -> Bool? {
        state.withLock { $0[backend] }
    }

    /// False only once a probe has failed: a backend not probed yet counts as up.
    func isUp(_ backend: String) -> Bool {
        state.withLock { $0[backend] ?? true }
    }
}
