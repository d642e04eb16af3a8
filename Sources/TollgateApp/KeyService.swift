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
