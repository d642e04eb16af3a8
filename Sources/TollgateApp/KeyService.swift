import Logging
import TollgateAdmin
import TollgateCore
import TollgateDataPlane

/// Keys as the admin API, `tollgate keys` and `tollgate apply` change them, and then told to
/// every replica: this process forgets its cached copy at once (`invalidate`: the server's
/// gateway; nil in the CLI), PostgreSQL announces the change itself (NOTIFY in the same
/// statement), and with Redis it is published on the revocation channel.
public struct KeyService: KeyAdministration {
    /// The config in force (a reload may change plans and networks).
    let current: CurrentConfig
    var config: TollgateConfig { current.value }
    let store: any KeyStore
    let invalidate: (@Sendable (String) async -> Void)?
    /// This replica's unflushed usage (the server); nil in the CLI.
    let ledger: QuotaLedger?
    let logger: Logger

    public init(
        config: CurrentConfig, store: any KeyStore, invalidate: (@Sendable (String) async -> Void)?, ledger: QuotaLedger?, logger: Logger
    ) {
        self.current = config
        self.store = store
        self.invalidate = invalidate
        self.ledger = ledger
        self.logger = logger
    }

    /// For a one-shot caller (the CLI): the config as read.
    public init(
        config: TollgateConfig, store: any KeyStore, invalidate: (@Sendable (String) async -> Void)?, ledger: QuotaLedger?, logger: Logger
    ) {
        self.init(config: CurrentConfig(config), store: store, invalidate: invalidate, ledger: ledger, logger: logger)
    }

    /// How the last change reached the other replicas, for the CLI to say.
    public typealias Outcome = KeyChangeAnnouncer.Outcome

    private var audit: AuditTrail { AuditTrail(store: store, logger: logger) }

    public func create(_ request: NewKey) async throws -> IssuedKey {
        do {
            let issued = try await KeyIssuer.issue(request, config: config, store: store)
            await audit.record("key.create", target: issued.record.prefix, after: AuditedKey(issued.record))
            return IssuedKey(key: issued.key, secret: issued.secret, record: issued.record)
        } catch let error as KeyIssueError {
            throw KeyAdministrationError(error.description)
        }
    }

    public func list() async throws -> [APIKeyRecord] { try await store.list() }

    public func record(prefix: String) async throws -> APIKeyRecord? { try await store.record(prefix: prefix) }

    public func update(prefix: String, _ change: KeyChange) async throws -> APIKeyRecord? {
        guard let record = try await store.record(prefix: prefix) else { return nil }
        var wanted = change.applied(to: record)
        // The rules a new key passes, on the key as it would be.
        var request = NewKey(plan: wanted.plan)
        request.allowedIPs = wanted.allowedIPs
        request.allowedOrigins = wanted.allowedOrigins
        request.allowedMethods = wanted.allowedMethods
        request.allowedNetworks = wanted.allowedNetworks
        request.allowedContracts = wanted.allowedContracts
        request.allowedUserAgents = wanted.allowedUserAgents
        request.expiresAt = wanted.expiresAt
        request.accountID = change.accountID != nil ? wanted.accountID : nil
        do {
            let checked = try await KeyIssuer.check(request, config: config, store: store)
            wanted.allowedIPs = checked.allowedIPs
            wanted.allowedContracts = checked.allowedContracts
        } catch let error as KeyIssueError {
            throw KeyAdministrationError(error.description)
        }
        guard wanted != record else { return record }
        guard try await store.update(wanted) else { return nil }
        await changed(prefix)
        return await audit(.update, prefix, before: record)
    }

    public func revoke(prefix: String) async throws -> Bool {
        let before = try await store.record(prefix: prefix)
        guard try await store.revoke(prefix: prefix) else { return false }
        await changed(prefix)
        await audit(.revoke, prefix, before: before)
        return true
    }

    public func rotate(prefix: String, overlap: String, expiresIn: String?) async throws -> RotatedKey? {
        guard try await store.record(prefix: prefix) != nil else { return nil }
        let rotated: KeyIssuer.Rotated
        do {
            rotated = try await KeyIssuer.rotate(prefix: prefix, overlap: overlap, expiresIn: expiresIn, config: config, store: store)
        } catch let error as KeyIssueError {
            throw KeyAdministrationError(error.description)
        }
        await changed(prefix)
        var old = rotated.old
        old.expiresAt = rotated.oldExpiresAt
        let issued = rotated.issued
        await audit.record("key.create", target: issued.record.prefix, after: AuditedKey(issued.record))
        await audit.record("key.rotate", target: prefix, before: AuditedKey(rotated.old), after: AuditedKey(old))
        return RotatedKey(issued: IssuedKey(key: issued.key, secret: issued.secret, record: issued.record), old: old)
    }

    public func usage(prefix: String, from: String?, to: String?, by: UsageGrouping) async throws -> KeyUsageReport? {
        let reader = UsageReader(config: config, store: store, ledger: ledger)
        try reader.checkDays(from, to)
        guard let record = try await store.record(prefix: prefix) else { return nil }
        let period = BillingPeriod.current()
        return KeyUsageReport(
            prefix: record.prefix, period: period, computeUnits: try await reader.month(record, period: period),
            quota: config.plans[record.plan]?.monthlyCU, by: by, rows: try await reader.rows([record.prefix], from: from, to: to, by: by))
    }

    private enum Action: String {
        case update = "key.update"
        case revoke = "key.revoke"
    }

    /// The audit entry for a change to an existing key, with the record read back after it.
    @discardableResult
    private func audit(_ action: Action, _ prefix: String, before: APIKeyRecord?) async -> APIKeyRecord? {
        let after = try? await store.record(prefix: prefix)
        await audit.record(action.rawValue, target: prefix, before: before.map(AuditedKey.init), after: after.map(AuditedKey.init))
        return after
    }

    /// This replica at once; the others through PostgreSQL's NOTIFY or the Redis channel.
    @discardableResult
    public func changed(_ prefix: String) async -> Outcome {
        await invalidate?(prefix)
        let outcome = await KeyChangeAnnouncer.announce(prefix: prefix, config: config)
        if case .redisUnreachable(let error) = outcome {
            logger.warning("key change not announced to other replicas; they apply it within the auth cache TTL", metadata: [
                "key": "\(prefix)", "error": "\(error)",
            ])
        }
        return outcome
    }
}
