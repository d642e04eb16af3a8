import Logging
import TollgateAdmin
import TollgateCore

/// Accounts as the admin API and the CLI change them: one place for the name rule and for
/// telling the replicas. A suspension changes no key, so each of the account's keys is
/// announced as a key change: this process forgets its cached copies at once (`invalidate`,
/// the server's gateway; nil in the CLI), PostgreSQL has already sent NOTIFY in the same
/// transaction, and with Redis the prefixes are published on the revocation channel.
public struct AccountService: AccountAdministration {
    /// The config in force (a reload may change plans and networks).
    let current: CurrentConfig
    var config: TollgateConfig { current.value }
    let store: any KeyBackendStore
    let invalidate: (@Sendable (String) async -> Void)?
    /// This replica's unflushed usage (the server); nil in the CLI.
    let ledger: QuotaLedger?
    let logger: Logger

    public init(
        config: CurrentConfig, store: any KeyBackendStore, invalidate: (@Sendable (String) async -> Void)?, ledger: QuotaLedger? = nil,
        logger: Logger
    ) {
        self.current = config
        self.store = store
        self.invalidate = invalidate
        self.ledger = ledger
        self.logger = logger
    }

    /// For a one-shot caller (the CLI): the config as read.
    public init(
        config: TollgateConfig, store: any KeyBackendStore, invalidate: (@Sendable (String) async -> Void)?, ledger: QuotaLedger? = nil,
        logger: Logger
    ) {
        self.init(config: CurrentConfig(config), store: store, invalidate: invalidate, ledger: ledger, logger: logger)
    }

    public func create(name: String) async throws -> Account {
        if let problem = Account.problem(withName: name) { throw KeyAdministrationError(problem) }
        let account = try await store.createAccount(Account(name: name, createdAt: WallClock.nowMillis() / 1000))
        await audit.record("account.create", target: "account:\(account.id)", after: account)
        return account
    }

    public func list(after: Int64, limit: Int) async throws -> [Account] { try await store.accounts(after: after, limit: limit) }

    public func account(id: Int64) async throws -> Account? { try await store.account(id: id) }

    public func setStatus(id: Int64, _ status: Account.Status) async throws -> AccountChange? {
        let before = try await store.account(id: id)
        guard let keys = try await store.setAccountStatus(id: id, status), let account = try await store.account(id: id) else { return nil }
        await announce(keys)
        await audit.record(status == .suspended ? "account.suspend" : "account.resume", target: "account:\(id)", before: before, after: account)
        return AccountChange(account: account, keys: keys)
    }

    public func delete(id: Int64) async throws -> AccountChange? {
        guard let account = try await store.account(id: id), let keys = try await store.deleteAccount(id: id) else { return nil }
        await announce(keys)
        await audit.record("account.delete", target: "account:\(id)", before: account, after: DeletedAccount(revoked_keys: keys))
        return AccountChange(account: account, keys: keys)
    }

    public func usage(id: Int64, from: String?, to: String?, by: UsageGrouping) async throws -> AccountUsageReport? {
        let reader = UsageReader(config: config, store: store, ledger: ledger)
        try reader.checkDays(from, to)
        guard try await store.account(id: id) != nil else { return nil }
        let period = BillingPeriod.current()
        let records = try await store.list().filter { $0.accountID == id }
        var keys: [AccountUsageReport.Key] = []
        for record in records {
            keys.append(.init(
                prefix: record.prefix, plan: record.plan, status: record.status, computeUnits: try await reader.month(record, period: period),
                quota: config.plans[record.plan]?.monthlyCU))
        }
        let rows = records.isEmpty ? (config.telemetry.clickHouseSettings() == nil ? nil : []) : try await reader.rows(records.map(\.prefix), from: from, to: to, by: by)
        return AccountUsageReport(accountID: id, period: period, keys: keys, by: by, rows: rows)
    }

    private var audit: AuditTrail { AuditTrail(store: store, logger: logger) }

    private struct DeletedAccount: Encodable {
        let revoked_keys: [String]
    }

    /// How the last change reached the other replicas (the CLI prints it).
    @discardableResult
    func announce(_ prefixes: [String]) async -> KeyChangeAnnouncer.Outcome {
        if let invalidate { for prefix in prefixes { await invalidate(prefix) } }
        let outcome = await KeyChangeAnnouncer.announce(prefixes: prefixes, config: config)
        if case .redisUnreachable(let error) = outcome {
            logger.warning("account change not announced to other replicas; they apply it within the auth cache TTL", metadata: [
                "keys": "\(prefixes.count)", "error": "\(error)",
            ])
        }
        return outcome
    }
}
