import Foundation
import Logging
import TollgateAdmin
import TollgateCore

/// Records each change the services make: a row in the store's audit log (who, what, when,
/// before and after) and a log line. The change has been made when this runs; a row that
/// cannot be written is logged as an error with the whole entry, never retried into a second.
struct AuditTrail: Sendable {
    let log: (any AuditLog)?
    let logger: Logger

    init(store: Any, logger: Logger) {
        self.log = store as? any AuditLog
        self.logger = logger
    }

    /// The admin token's name (`token:billing`), or `cli:<user>` for a command.
    static var actor: String {
        AuditActor.current ?? "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? String(getuid()))
    }

    func record(_ action: String, target: String, before: (any Encodable)? = nil, after: (any Encodable)? = nil) async {
        let entry = AuditEntry(
            at: WallClock.nowMillis(), actor: Self.actor, action: action, target: target, before: before.flatMap(Self.json),
            after: after.flatMap(Self.json))
        logger.notice("audit", metadata: ["actor": "\(entry.actor)", "action": "\(action)", "target": "\(target)"])
        guard let log else { return }
        do {
            try await log.append(entry)
        } catch {
            logger.error("audit entry not stored", metadata: [
                "actor": "\(entry.actor)", "action": "\(action)", "target": "\(target)", "before": "\(entry.before ?? "-")",
                "after": "\(entry.after ?? "-")", "error": "\(error)",
            ])
        }
    }

    static func json(_ value: any Encodable) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).flatMap { String(data: $0, encoding: .utf8) }
    }
}

/// A key as the audit log shows it: everything but its hash and secret.
struct AuditedKey: Encodable {
    let prefix: String
    let plan: String
    let status: String
    let label: String
    let expires_at: Int64?
    let allowed_ips, allowed_origins, allowed_methods, allowed_networks, allowed_contracts, allowed_user_agents: [String]
    let has_secret: Bool
    let require_jwt: Bool
    let account_id: Int64?

    init(_ record: APIKeyRecord) {
        prefix = record.prefix
        plan = record.plan
        status = record.status.rawValue
        label = record.label
        expires_at = record.expiresAt
        allowed_ips = record.allowedIPs
        allowed_origins = record.allowedOrigins
        allowed_methods = record.allowedMethods
        allowed_networks = record.allowedNetworks
        allowed_contracts = record.allowedContracts
        allowed_user_agents = record.allowedUserAgents
        has_secret = record.secretHash != nil
        require_jwt = record.requireJWT
        account_id = record.accountID
    }
}
