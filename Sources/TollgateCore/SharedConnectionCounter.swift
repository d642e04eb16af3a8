/// Open WebSockets per key across every replica, so `plans.NAME.max_ws_connections` holds for
/// the fleet and not per replica. Asked once per upgrade (never per message); a replica that
/// dies stops counting when its entries expire.
public protocol SharedConnectionCounter: Sendable {
    /// Takes a slot unless `max` are open across the replicas; throws when the backend does
    /// not answer (the caller then counts on this replica alone).
    func acquire(keyID: Int64, max: Int) async throws -> Bool
    /// Gives a slot back (a socket closed).
    func release(keyID: Int64) async
}
