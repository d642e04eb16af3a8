/// Where API keys live. SQLite in the embedded shape, PostgreSQL when distributed.
///
/// The data plane never calls a store directly: `KeyDirectory` fronts it with a cache and
/// single-flight, so a store sees at most one lookup per key per TTL.
public protocol KeyStore: Sendable {
    func lookup(hash: KeyHash) async throws -> APIKeyRecord?
    /// Stores a new key and returns it with its id.
    func create(_ record: APIKeyRecord) async throws -> APIKeyRecord
    func list() async throws -> [APIKeyRecord]
    /// Revokes the key with this prefix; returns false when none matched.
    func revoke(prefix: String) async throws -> Bool
    /// The key with this prefix (management commands; the data plane looks up by hash).
    func record(prefix: String) async throws -> APIKeyRecord?
    /// Sets (or clears, with nil) when the key with this prefix stops working; false when none matched.
    func setExpiry(prefix: String, expiresAt: Int64?) async throws -> Bool
    /// Moves the key with this prefix to another plan; returns false when none matched.
    func setPlan(prefix: String, plan: String) async throws -> Bool
    /// Replaces what may change about the key with `record.prefix`: plan, label, expiry, the
    /// allowlists, the JWT requirement and the account (never its hash, secret, status or
    /// creation time). False when no key has that prefix.
    func update(_ record: APIKeyRecord) async throws -> Bool
    /// True when the store answers (readiness).
    func ping() async -> Bool
}

/// Durable monthly usage per key, so a restart does not reset quotas.
public protocol QuotaStore: Sendable {
    /// Compute units recorded for `keyID` in `period` (`YYYY-MM`).
    func usage(keyID: Int64, period: String) async throws -> Int64
    /// Adds the given amounts to the period's totals, atomically as a whole.
    func add(_ amounts: [Int64: Int64], period: String) async throws
    /// Adds and returns each key's new total for the period.
    func addReturningTotals(_ amounts: [Int64: Int64], period: String) async throws -> [Int64: Int64]
    /// `addReturningTotals` applied at most once per `batchID`: a flush retried after an
    /// ambiguous failure (committed, but the answer was lost) must not count twice.
    func addBatch(_ amounts: [Int64: Int64], period: String, batchID: String) async throws -> [Int64: Int64]
}

extension QuotaStore {
    /// For stores where a failed add cannot have committed (SQLite, memory): plain adds.
    public func addBatch(_ amounts: [Int64: Int64], period: String, batchID: String) async throws -> [Int64: Int64] {
        try await addReturningTotals(amounts, period: period)
    }

    /// Adds, then reads back each key's total; stores that can do both in one statement override it.
    public func addReturningTotals(_ amounts: [Int64: Int64], period: String) async throws -> [Int64: Int64] {
        try await add(amounts, period: period)
        var totals: [Int64: Int64] = [:]
        for keyID in amounts.keys { totals[keyID] = try await usage(keyID: keyID, period: period) }
        return totals
    }
}

/// The cluster-wide monthly counters (Redis): what every replica has spent, seen by all within
/// one flush interval, while the durable totals stay in the `QuotaStore`.
public protocol SharedQuotaCounter: Sendable {
    /// Adds each key's `deltas` to its counter for `period`, raises a counter that fell below the
    /// durable total in `floors` (the shared store lost it), and returns the counters. A key
    /// missing from the answer has no cluster-wide counter for `period` (it closed long ago):
    /// the caller keeps its own count.
    func sync(_ deltas: [Int64: Int64], floors: [Int64: Int64], period: String) async throws -> [Int64: Int64]
    /// The counter for one key, or nil when the shared store has none.
    func current(keyID: Int64, period: String) async throws -> Int64?
}
