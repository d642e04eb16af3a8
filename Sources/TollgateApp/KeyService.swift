import Logging
import TollgateAdmin
import TollgateCore
import TollgateDataPlane

/// Keys as the admin API changes them, on the same calls as the CLI (`KeyIssuer`, the store),
/// and then told to every replica: this process forgets its cached copy at once, PostgreSQL
/// announces the change itself (NOTIFY in the same statement), and with Redis it is published
/// on the revocation channel, as `tollgate keys revoke` does.
struct KeyService: KeyAdministration {
    let config: TollgateConfig
    let store: any KeyStore
    let gateway: Gateway
    let ledger: QuotaLedger
    let logger: Logger

    func create(_ request: NewKey) async throws -> IssuedKey {
        do {
            let issued = try await KeyIssuer.issue(request, config: config, store: store)
            return IssuedKey(key: issued.key, secret: issued.secret, record: issued.record)
        } catch let error as KeyIssueError {
            throw KeyAdministrationError(error.description)
        }
    }

    func list() async throws -> [APIKeyRecord] { try await store.list() }

    func record(prefix: String) async throws -> APIKeyRecord? { try await store.record(prefix: prefix) }

    func setPlan(prefix: String, plan: String) async throws -> Bool {
        guard config.plans[plan] != nil else {
            throw KeyAdministrationError("unknown plan '\(plan)' (configured: \(config.plans.keys.sorted().joined(separator: ", ")))")
        }
        guard try await store.setPlan(prefix: prefix, plan: plan) else { return false }
        await changed(prefix)
        return true
    }

    func setExpiry(prefix: String, expiresAt: Int64?) async throws -> Bool {
        guard try await store.setExpiry(prefix: prefix, expiresAt: expiresAt) else { return false }
        await changed(prefix)
        return true
    }

    func revoke(prefix: String) async throws -> Bool {
        guard try await store.revoke(prefix: prefix) else { return false }
        await changed(prefix)
        return true
    }

    func rotate(prefix: String, overlap: String, expiresIn: String?) async throws -> RotatedKey? {
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
        return RotatedKey(issued: IssuedKey(key: issued.key, secret: issued.secret, record: issued.record), old: old)
    }

    func usage(prefix: String, from: String?, to: String?) async throws -> KeyUsageReport? {
        for day in [from, to].compactMap({ $0 }) where !TelemetryAdmin.isDate(day) {
            throw KeyAdministrationError("\(day) is not a day (YYYY-MM-DD)")
        }
        guard let record = try await store.record(prefix: prefix) else { return nil }
        let period = BillingPeriod.current()
        let stored = try await (store as? any QuotaStore)?.usage(keyID: record.id, period: period) ?? 0
        var days: [KeyUsageReport.Day]?
        if config.telemetry.clickHouseSettings() != nil {
            do {
                days = try await TelemetryAdmin.usage(config.telemetry, keyPrefix: prefix, from: from, to: to).map {
                    .init(day: $0.day, network: $0.network, requests: Int64($0.requests), computeUnits: Int64($0.computeUnits), errors: Int64($0.errors))
                }
            } catch {
                throw UsageUnavailable("the telemetry store did not answer: \(error)")
            }
        }
        return KeyUsageReport(
            prefix: record.prefix, period: period, computeUnits: max(stored, ledger.spent(keyID: record.id) ?? 0),
            quota: config.plans[record.plan]?.monthlyCU, days: days)
    }

    /// This replica at once; the others through PostgreSQL's NOTIFY or the Redis channel.
    private func changed(_ prefix: String) async {
        await gateway.invalidate(prefix: prefix)
        if case .redisUnreachable(let error) = await KeyChangeAnnouncer.announce(prefix: prefix, config: config) {
            logger.warning("key change not announced to other replicas; they apply it within the auth cache TTL", metadata: [
                "key": "\(prefix)", "error": "\(error)",
            ])
        }
    }
}
