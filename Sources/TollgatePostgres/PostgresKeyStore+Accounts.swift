import PostgresNIO
import TollgateCore

/// Accounts on the primary. A suspension, a resume or a deletion announces each of the
/// account's keys on the change channel in the same transaction, as a key revocation does, so
/// every replica drops its cached copies at commit.
extension PostgresKeyStore: AccountStore {
    public func createAccount(_ account: Account) async throws -> Account {
        let logger = cluster.logger
        let id = try await cluster.write { connection in
            let rows = try await connection.query(
                "INSERT INTO accounts (name, status, created_at) VALUES (\(account.name), \(account.status.rawValue), \(account.createdAt)) RETURNING id",
                logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            return Int64(0)
        }
        var stored = account
        stored.id = id
        return stored
    }

    public func accounts(after: Int64, limit: Int) async throws -> [Account] {
        let logger = cluster.logger
        return try await cluster.read { connection in
            let rows = try await connection.query(
                "SELECT id, name, status, created_at FROM accounts WHERE id > \(after) ORDER BY id LIMIT \(Int64(limit))", logger: logger)
            var accounts: [Account] = []
            for try await row in rows.decode((Int64, String, String, Int64).self) { accounts.append(Self.account(row)) }
            return accounts
        }
    }

    public func account(id: Int64) async throws -> Account? {
        let logger = cluster.logger
        return try await cluster.read { connection in
            let rows = try await connection.query("SELECT id, name, status, created_at FROM accounts WHERE id = \(id)", logger: logger)
            for try await row in rows.decode((Int64, String, String, Int64).self) { return Self.account(row) }
            return nil
        }
    }

    public func setAccountStatus(id: Int64, _ status: Account.Status) async throws -> [String]? {
        let logger = cluster.logger
        return try await cluster.write { connection in
            try await connection.withTransaction(logger: logger) { connection in
                var found = false
                for try await _ in try await connection.query(
                    "UPDATE accounts SET status = \(status.rawValue) WHERE id = \(id) RETURNING id", logger: logger
                ).decode(Int64.self) {
                    found = true
                }
                guard found else { return nil }
                return try await Self.announceKeys(of: id, connection: connection, logger: logger)
            }
        }
    }

    public func deleteAccount(id: Int64) async throws -> [String]? {
        let logger = cluster.logger
        return try await cluster.write { connection in
            try await connection.withTransaction(logger: logger) { connection in
                var found = false
                for try await _ in try await connection.query(
                    "SELECT id FROM accounts WHERE id = \(id) FOR UPDATE", logger: logger
                ).decode(Int64.self) {
                    found = true
                }
                guard found else { return nil }
                try await connection.query(
                    "UPDATE api_keys SET status = 'revoked', updated_at = now() WHERE account_id = \(id)", logger: logger)
                let prefixes = try await Self.announceKeys(of: id, connection: connection, logger: logger)
                // The keys' account_id is set to NULL by the foreign key.
                try await connection.query("DELETE FROM accounts WHERE id = \(id)", logger: logger)
                return prefixes
            }
        }
    }

    /// NOTIFY for every key of the account (delivered at commit); their prefixes.
    private static func announceKeys(of id: Int64, connection: PostgresConnection, logger: Logger) async throws -> [String] {
        var prefixes: [String] = []
        for try await prefix in try await connection.query(
            "SELECT prefix FROM api_keys WHERE account_id = \(id) ORDER BY id", logger: logger
        ).decode(String.self) {
            prefixes.append(prefix)
        }
        try await connection.query(
            "SELECT count(pg_notify(\(changeChannel), prefix)) FROM api_keys WHERE account_id = \(id)", logger: logger)
        return prefixes
    }

    private static func account(_ row: (Int64, String, String, Int64)) -> Account {
        Account(id: row.0, name: row.1, status: Account.Status(rawValue: row.2) ?? .suspended, createdAt: row.3)
    }
}
