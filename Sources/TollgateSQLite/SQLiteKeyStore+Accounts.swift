import SQLiteNIO
import TollgateCore

/// Accounts in the embedded store, one statement per change: other writers (the usage flush)
/// share the connection, so no transaction is held open across awaits.
extension SQLiteKeyStore: AccountStore {
    public func createAccount(_ account: Account) async throws -> Account {
        let rows = try await connection.query(
            "INSERT INTO accounts (name, status, created_at) VALUES (?, ?, ?) RETURNING id",
            [.text(account.name), .text(account.status.rawValue), .integer(Int(account.createdAt))])
        var stored = account
        stored.id = Int64(rows.first?.column("id")?.integer ?? 0)
        return stored
    }

    public func accounts(after: Int64, limit: Int) async throws -> [Account] {
        try await connection.query(
            "SELECT id, name, status, created_at FROM accounts WHERE id > ? ORDER BY id LIMIT ?", [.integer(Int(after)), .integer(limit)]
        ).map(Self.account)
    }

    public func account(id: Int64) async throws -> Account? {
        try await connection.query("SELECT id, name, status, created_at FROM accounts WHERE id = ?", [.integer(Int(id))]).first.map(Self.account)
    }

    public func setAccountStatus(id: Int64, _ status: Account.Status) async throws -> [String]? {
        let updated = try await connection.query(
            "UPDATE accounts SET status = ? WHERE id = ? RETURNING id", [.text(status.rawValue), .integer(Int(id))])
        guard !updated.isEmpty else { return nil }
        return try await connection.query("SELECT prefix FROM api_keys WHERE account_id = ? ORDER BY id", [.integer(Int(id))])
            .compactMap { $0.column("prefix")?.string }
    }

    /// The account goes first, so no key can join it meanwhile; SQLite does not enforce the
    /// foreign key unless asked, so the keys are unlinked (and revoked) here.
    public func deleteAccount(id: Int64) async throws -> [String]? {
        let deleted = try await connection.query("DELETE FROM accounts WHERE id = ? RETURNING id", [.integer(Int(id))])
        guard !deleted.isEmpty else { return nil }
        return try await connection.query(
            "UPDATE api_keys SET status = 'revoked', account_id = NULL WHERE account_id = ? RETURNING prefix", [.integer(Int(id))]
        ).compactMap { $0.column("prefix")?.string }
    }

    private static func account(_ row: SQLiteRow) -> Account {
        Account(
            id: Int64(row.column("id")?.integer ?? 0), name: row.column("name")?.string ?? "",
            status: Account.Status(rawValue: row.column("status")?.string ?? "") ?? .suspended,
            createdAt: Int64(row.column("created_at")?.integer ?? 0))
    }
}
