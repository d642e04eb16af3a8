import Logging
import TollgateAdmin
import TollgateCore

/// `tollgate export` and `tollgate apply`: the store's accounts and keys as a `SyncDocument`,
/// and a `SyncPlan` carried out through `AccountService` and `KeyService`, so every change
/// passes the admin API's rules and reaches the running replicas the same way.
public struct KeySync: Sendable {
    let config: TollgateConfig
    let store: any KeyBackendStore
    let keys: KeyService
    let accounts: AccountService

    public init(config: TollgateConfig, store: any KeyBackendStore, logger: Logger) {
        self.config = config
        self.store = store
        self.keys = KeyService(config: config, store: store, invalidate: nil, ledger: nil, logger: logger)
        self.accounts = AccountService(config: config, store: store, invalidate: nil, logger: logger)
    }

    /// Every account and key, oldest first.
    public func export() async throws -> SyncDocument {
        let accounts = try await allAccounts()
        var names: [Int64: String] = [:]
        var problems: [String] = []
        for (name, same) in Dictionary(grouping: accounts, by: \.name) where same.count > 1 {
            problems.append("\(same.count) accounts are named \"\(name)\" (ids \(same.map { String($0.id) }.joined(separator: ", "))); the file names accounts, so rename all but one first")
        }
        guard problems.isEmpty else { throw SyncProblems(problems) }
        for account in accounts { names[account.id] = account.name }
        let keys = try await store.list().sorted { $0.id < $1.id }.map { record in
            var key = SyncDocument.Key(prefix: record.prefix, account: record.accountID.flatMap { names[$0] }, plan: record.plan)
            key.label = record.label.isEmpty ? nil : record.label
            // A suspension belongs to the account; the key itself is active.
            key.status = record.status == .revoked ? .revoked : nil
            key.expiresAt = record.expiresAt
            key.allowedIPs = record.allowedIPs.isEmpty ? nil : record.allowedIPs
            key.allowedOrigins = record.allowedOrigins.isEmpty ? nil : record.allowedOrigins
            key.allowedMethods = record.allowedMethods.isEmpty ? nil : record.allowedMethods
            key.allowedNetworks = record.allowedNetworks.isEmpty ? nil : record.allowedNetworks
            key.allowedContracts = record.allowedContracts.isEmpty ? nil : record.allowedContracts
            key.allowedUserAgents = record.allowedUserAgents.isEmpty ? nil : record.allowedUserAgents
            key.requireJWT = record.requireJWT ? true : nil
            return key
        }
        return SyncDocument(
            accounts: accounts.map { .init(name: $0.name, status: $0.status == .active ? nil : $0.status) }, keys: keys)
    }

    /// What applying `file` would change.
    public func plan(_ file: SyncDocument) async throws -> SyncPlan {
        try SyncPlan.make(file: file, accounts: try await allAccounts(), keys: try await store.list(), plans: Set(config.plans.keys))
    }

    /// A key created by the apply: shown once, like `keys create`.
    public struct Created: Sendable {
        public var key: String
        public var secret: String?
        public var prefix: String
    }

    /// Carries out `plan`: accounts first (so new keys can join them), then keys, then the
    /// revocations and deletions. Stops at the first refusal, saying what was done before it.
    public func apply(_ plan: SyncPlan) async throws -> [Created] {
        var ids = Dictionary(try await allAccounts().map { ($0.name, $0.id) }, uniquingKeysWith: { first, _ in first })
        var created: [Created] = []
        var done = 0
        func account(_ name: String?) throws -> Int64? {
            guard let name else { return nil }
            guard let id = ids[name] else { throw SyncProblems(["account \"\(name)\" was not created"]) }
            return id
        }
        do {
            for change in plan.changes {
                switch change {
                case .createAccount(let name, let status):
                    let made = try await accounts.create(name: name)
                    ids[name] = made.id
                    if status != .active { _ = try await accounts.setStatus(id: made.id, status) }
                case .setAccountStatus(let id, _, let status):
                    _ = try await accounts.setStatus(id: id, status)
                case .createKey(let key):
                    var request = NewKey(plan: key.plan)
                    request.label = key.label ?? ""
                    request.expiresAt = key.expiresAt
                    request.allowedIPs = key.allowedIPs ?? []
                    request.allowedOrigins = key.allowedOrigins ?? []
                    request.allowedMethods = key.allowedMethods ?? []
                    request.allowedNetworks = key.allowedNetworks ?? []
                    request.allowedContracts = key.allowedContracts ?? []
                    request.allowedUserAgents = key.allowedUserAgents ?? []
                    request.requireJWT = key.requireJWT ?? false
                    request.withSecret = key.withSecret ?? false
                    request.accountID = try account(key.account)
                    let issued = try await keys.create(request)
                    created.append(Created(key: issued.key, secret: issued.secret, prefix: issued.record.prefix))
                case .updateKey(let prefix, var change, let owner, _):
                    if let owner { change.accountID = .some(try account(owner)) }
                    _ = try await keys.update(prefix: prefix, change)
                case .revokeKey(let prefix, _):
                    _ = try await keys.revoke(prefix: prefix)
                case .deleteAccount(let id, _, _):
                    _ = try await accounts.delete(id: id)
                }
                done += 1
            }
        } catch {
            let made = created.map { "  created \($0.prefix): \($0.key)" + ($0.secret.map { " secret \($0)" } ?? "") }
            throw SyncProblems(["stopped after \(done) of \(plan.changes.count) changes: \(error)"] + made)
        }
        return created
    }

    private func allAccounts() async throws -> [Account] {
        var all: [Account] = []
        while true {
            let page = try await store.accounts(after: all.last?.id ?? 0, limit: 1000)
            all += page
            if page.count < 1000 { return all }
        }
    }
}
