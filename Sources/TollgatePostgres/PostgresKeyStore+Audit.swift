import PostgresNIO
import TollgateCore

extension PostgresKeyStore: AuditLog {
    public func append(_ entry: AuditEntry) async throws {
        let logger = cluster.logger
        _ = try await cluster.write { connection in
            try await connection.query(
                """
                INSERT INTO audit_log (at, actor, action, target, before, after)
                VALUES (\(entry.at), \(entry.actor), \(entry.action), \(entry.target), \(entry.before), \(entry.after))
                """, logger: logger)
        }
    }

    public func auditEntries(before: Int64?, limit: Int) async throws -> [AuditEntry] {
        let logger = cluster.logger
        let below = before ?? Int64.max
        return try await cluster.read { connection in
            let rows = try await connection.query(
                "SELECT id, at, actor, action, target, before, after FROM audit_log WHERE id < \(below) ORDER BY id DESC LIMIT \(Int64(limit))",
                logger: logger)
            var entries: [AuditEntry] = []
            for try await row in rows.decode((Int64, Int64, String, String, String, String?, String?).self) {
                entries.append(AuditEntry(id: row.0, at: row.1, actor: row.2, action: row.3, target: row.4, before: row.5, after: row.6))
            }
            return entries
        }
    }
}
