import SQLiteNIO
import TollgateCore

extension SQLiteKeyStore: AuditLog {
    public func append(_ entry: AuditEntry) async throws {
        _ = try await connection.query(
            "INSERT INTO audit_log (at, actor, action, target, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .integer(Int(entry.at)), .text(entry.actor), .text(entry.action), .text(entry.target),
                entry.before.map { .text($0) } ?? .null, entry.after.map { .text($0) } ?? .null,
            ])
    }

    public func auditEntries(before: Int64?, limit: Int) async throws -> [AuditEntry] {
        try await connection.query(
            "SELECT id, at, actor, action, target, before, after FROM audit_log WHERE id < ? ORDER BY id DESC LIMIT ?",
            [.integer(Int(before ?? Int64.max)), .integer(limit)]
        ).map { row in
            AuditEntry(
                id: Int64(row.column("id")?.integer ?? 0), at: Int64(row.column("at")?.integer ?? 0),
                actor: row.column("actor")?.string ?? "", action: row.column("action")?.string ?? "",
                target: row.column("target")?.string ?? "", before: row.column("before")?.string, after: row.column("after")?.string)
        }
    }
}
