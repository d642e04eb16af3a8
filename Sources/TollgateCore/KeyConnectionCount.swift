import Synchronization

/// Open client connections that carry one key, for `plans.NAME.max_connections`: a connection
/// takes a slot with its first request on the key and gives it back when it closes. Shared by
/// every event loop (a key's connections land on any of them), so an atomic, not a lock.
public final class KeyConnectionCount: Sendable {
    private let open = Atomic<Int>(0)

    public init() {}

    public var current: Int { open.load(ordering: .relaxed) }

    /// Takes a slot unless `max` are taken.
    public func tryAcquire(max: Int) -> Bool {
        var current = open.load(ordering: .relaxed)
        while current < max {
            let (exchanged, original) = open.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    public func release() {
        open.subtract(1, ordering: .relaxed)
    }
}
