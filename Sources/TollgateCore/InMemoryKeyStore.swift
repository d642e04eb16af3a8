import Synchronization

/// KeyStore and QuotaStore for unit tests. Counts lookups so tests can prove caching.
public final class InMemoryKeyStore: KeyStore, QuotaStore, AccountStore, AuditLog {
    private struct State {
        var keys: [KeyHash: APIKeyRecord] = [:]
        var nextID: Int64 = 1
        var lookups = 0
        var usage: [String: [Int64: Int64]] = [:]
        var failing = false
        var accounts: [Int64: Account] = [:]
        var nextAccountID: Int64 = 1
        var audit: [AuditEntry] = []

        /// The key as stores report it: `suspended` while its account is.
        func view(_ record: APIKeyRecord) -> APIKeyRecord {
            guard record.status == .active, let id = record.accountID, accounts[id]?.status == .suspended else { return record }
            var seen = record
            seen.status = .suspended
            return seen
        }
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
            return state.keys[hash].map(state.view)
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
        state.withLock { state in state.keys.values.sorted { $0.id < $1.id }.map(state.view) }
    }

    public func revoke(prefix: String) async throws -> Bool {
        state.withLock { state in
            guard let hash = state.keys.first(where: { $0.value.prefix == prefix })?.key else { return false }
            state.keys[hash]?.status = .revoked
            return true
        }
    }

    public func record(prefix: String) async throws -> APIKeyRecord? {
        state.withLock { state in state.keys.values.first { $0.prefix == prefix }.map(state.view) }
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

    public func update(_ record: APIKeyRecord) async throws -> Bool {
        state.withLock { state in
            guard let hash = state.keys.first(where: { $0.value.prefix == record.prefix })?.key, var stored = state.keys[hash] else { return false }
            stored.plan = record.plan
            stored.label = record.label
            stored.expiresAt = record.expiresAt
            stored.allowedIPs = record.allowedIPs
            stored.allowedOrigins = record.allowedOrigins
            stored.allowedMethods = record.allowedMethods
            stored.allowedNetworks = record.allowedNetworks
            stored.allowedContracts = record.allowedContracts
            stored.allowedUserAgents = record.allowedUserAgents
            stored.requireJWT = record.requireJWT
            stored.accountID = record.accountID
            state.keys[hash] = stored
            return true
        }
    }

    public func createAccount(_ account: Account) async throws -> Account {
        state.withLock { state in
            var stored = account
            stored.id = state.nextAccountID
            state.nextAccountID += 1
            state.accounts[stored.id] = stored
            return stored
        }
    }

    public func accounts(after: Int64, limit: Int) async throws -> [Account] {
        state.withLock { state in Array(state.accounts.values.filter { $0.id > after }.sorted { $0.id < $1.id }.prefix(limit)) }
    }

    public func account(id: Int64) async throws -> Account? { state.withLock { $0.accounts[id] } }

    public func setAccountStatus(id: Int64, _ status: Account.Status) async throws -> [String]? {
        state.withLock { state in
            guard state.accounts[id] != nil else { return nil }
            state.accounts[id]?.status = status
            return state.keys.values.filter { $0.accountID == id }.sorted { $0.id < $1.id }.map(\.prefix)
        }
    }

    public func deleteAccount(id: Int64) async throws -> [String]? {
        state.withLock { state in
            guard state.accounts.removeValue(forKey: id) != nil else { return nil }
            var prefixes: [String] = []
            for (hash, record) in state.keys where record.accountID == id {
                state.keys[hash]?.status = .revoked
                state.keys[hash]?.accountID = nil
                prefixes.append(record.prefix)
            }
            return prefixes.sorted()
        }
    }

    public func append(_ entry: AuditEntry) async throws {
        state.withLock { state in
            var stored = entry
            stored.id = Int64(state.audit.count + 1)
            state.audit.append(stored)
        }
    }

    public func auditEntries(before: Int64?, limit: Int) async throws -> [AuditEntry] {
        state.withLock { state in Array(state.audit.reversed().filter { $0.id < before ?? Int64.max }.prefix(limit)) }
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
