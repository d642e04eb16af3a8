import SQLiteNIO

/// Versioned schema changes, applied in order and recorded in `PRAGMA user_version`.
enum SQLiteMigrations {
    static let steps: [[String]] = [
        // 1: keys, accounts and monthly usage.
        [
            """
            CREATE TABLE IF NOT EXISTS accounts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                status TEXT NOT NULL DEFAULT 'active'
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS api_keys (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER REFERENCES accounts(id),
                prefix TEXT NOT NULL UNIQUE,
                hash TEXT NOT NULL UNIQUE,
                plan TEXT NOT NULL,
                status TEXT NOT NULL,
                label TEXT NOT NULL DEFAULT '',
                created_at INTEGER NOT NULL,
                expires_at INTEGER,
                allowed_ips TEXT NOT NULL DEFAULT '',
                allowed_origins TEXT NOT NULL DEFAULT '',
                allowed_methods TEXT NOT NULL DEFAULT '',
                allowed_networks TEXT NOT NULL DEFAULT ''
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS usage (
                key_id INTEGER NOT NULL,
                period TEXT NOT NULL,
                compute_units INTEGER NOT NULL,
                PRIMARY KEY (key_id, period)
            )
            """,
        ],
        // 2: contract and user-agent allowlists.
        [
            "ALTER TABLE api_keys ADD COLUMN allowed_contracts TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE api_keys ADD COLUMN allowed_user_agents TEXT NOT NULL DEFAULT ''",
        ],
        // 3: key secrets and a per-key JWT requirement.
        [
            "ALTER TABLE api_keys ADD COLUMN secret_hash TEXT",
            "ALTER TABLE api_keys ADD COLUMN require_jwt INTEGER NOT NULL DEFAULT 0",
        ],
        // 4: keys found by account (the accounts table and api_keys.account_id date from 1).
        ["CREATE INDEX IF NOT EXISTS api_keys_account_id ON api_keys (account_id)"],
        // 5: the audit log of admin changes.
        [
            """
            CREATE TABLE IF NOT EXISTS audit_log (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                at INTEGER NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                before TEXT,
                after TEXT
            )
            """,
        ],
    ]

    static func run(on connection: SQLiteConnection) async throws {
        let version = try await connection.query("PRAGMA user_version").first?.columns.first?.data.integer ?? 0
        guard version <= steps.count else { throw SQLiteStoreError.newerSchema(version) }
        for (index, statements) in steps.enumerated() where index >= version {
            _ = try await connection.query("BEGIN IMMEDIATE")
            do {
                for statement in statements { _ = try await connection.query(statement) }
                _ = try await connection.query("PRAGMA user_version = \(index + 1)")
                _ = try await connection.query("COMMIT")
            } catch {
                _ = try? await connection.query("ROLLBACK")
                throw error
            }
        }
    }
}
