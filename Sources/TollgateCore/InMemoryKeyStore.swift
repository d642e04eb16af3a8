import Synchronization

/// KeyStore and QuotaStore for unit tests. Counts lookups so tests can prove caching.
public final class InMemoryKeyStore: KeyStore, QuotaStore {
    private struct State {
        var keys: [KeyHash: APIKeyRecord] = [:]
        var nextID: Int64 = 1
        var lookups = 0
        var usage: [String: [Int64: Int64]] = [:]
        var failing = false
    }

    private let state = Mutex(State())

    public init() {}

    public var lookupCount: Int { state.withLock { $0.lookups } }

    /// Makes every call throw, to test what callers do when the store is down.
    public func setFailing(_ failing: Bool) { state.withLock { $0.failing = failing } }

    public func lookup(hash: KeyHash) async throws -> APIKeyRecord? {
        try state.withLock { state in
            state.lookups += 1
            if state.failing { throw KeyStoreUnavailable() }
            return state.keys[hash]
        }
    }

    public func create(_ record: APIKeyRecord) async throws -> APIKeyRecord {
        state.withLock { state in
            var stored = record
            stored.id = state.nextID
            state.nextID += 1
            state.keys[record.hash] = stored
            return stored
        }
    }

    public func list() async throws -> [APIKeyRecord] {
        state.withLock { $0.keys.values.sorted { $0.id < $1.id } }
    }

    public func revoke(prefix: String) async throws -> Bool {
        state.withLock { state in
            guard let hash = state.keys.first(where: { $0.value.prefix == prefix })?.key else { return false }
            state.keys[hash]?.status = .revoked
            return true
        }
    }

    public func record(prefix: String) async throws -> APIKeyRecord? {
        state.withLock { $0.keys.values.first { $0.prefix == prefix } }
    }

    public func setExpiry(prefix: String, expiresAt: Int64?) async throws -> Bool {
        state.withLock { state in
            guard let hash = state.keys.first(where: { $0.value.prefix == prefix })?.key else { return false }
            state.keys[hash]?.expiresAt = expiresAt
            return true
        }
    }

    public func setPlan(prefix: String, plan: String) async throws -> Bool {
        state.withLock { state in
            guard let hash = state.keys.first(where: { $0.value.prefix == prefix })?.key else { return false }
            state.keys[hash]?.plan = plan
            return true
        }
    }

    public func ping() async -> Bool { state.withLock { !$0.failing } }

    public func usage(keyID: Int64, period: String) async throws -> Int64 {
        state.withLock { $0.usage[period]?[keyID] ?? 0 }
    }

    public func add(_ amounts: [Int64: Int64], period: String) async throws {
        try state.withLock { state in
            if state.failing { throw KeyStoreUnavailable() }
            for (key, amount) in amounts { state.usage[period, default: [:]][key, default: 0] += amount }
        }
    }
}

public struct KeyStoreUnavailable: Error {
    public init() {}
}
