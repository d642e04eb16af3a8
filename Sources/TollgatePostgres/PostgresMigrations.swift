import Logging
import PostgresNIO

/// Versioned schema changes for the PostgreSQL key store.
///
/// `tollgate migrate` may run from every replica at once (a Kubernetes init container per
/// pod): each run takes a transaction-scoped advisory lock first, so one applies the missing
/// steps and the others then find nothing left to do.
public enum PostgresMigrations {
    /// The advisory lock's key: "tollgate" in ASCII, a number no other application should pick.
    static let lockKey: Int64 = 0x746F_6C6C_6761_7465

    static let steps: [[String]] = [
        // 1: keys and monthly usage.
        [
            """
            CREATE TABLE api_keys (
                id BIGSERIAL PRIMARY KEY,
                prefix TEXT NOT NULL UNIQUE,
                hash TEXT NOT NULL UNIQUE,
                plan TEXT NOT NULL,
                status TEXT NOT NULL,
                label TEXT NOT NULL DEFAULT '',
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                allowed_ips TEXT[] NOT NULL DEFAULT '{}',
                allowed_origins TEXT[] NOT NULL DEFAULT '{}',
                allowed_methods TEXT[] NOT NULL DEFAULT '{}',
                allowed_networks TEXT[] NOT NULL DEFAULT '{}',
                updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE usage (
                key_id BIGINT NOT NULL,
                period TEXT NOT NULL,
                compute_units BIGINT NOT NULL,
                PRIMARY KEY (key_id, period)
            )
            """,
        ],
        // 2: usage flushes applied once per batch id (a retry after a lost answer is a no-op).
        [
            """
            CREATE TABLE usage_batches (
                id TEXT PRIMARY KEY,
                created_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )
            """,
            "CREATE INDEX usage_batches_created_at ON usage_batches (created_at)",
        ],
        // 3: contract and user-agent allowlists.
        [
            """
            ALTER TABLE api_keys
                ADD COLUMN allowed_contracts TEXT[] NOT NULL DEFAULT '{}',
                ADD COLUMN allowed_user_agents TEXT[] NOT NULL DEFAULT '{}'
            """,
        ],
        // 4: key secrets and a per-key JWT requirement.
        [
            "ALTER TABLE api_keys ADD COLUMN secret_hash TEXT, ADD COLUMN require_jwt BOOLEAN NOT NULL DEFAULT false",
        ],
        // 5: accounts, which own keys and can be suspended.
        [
            """
            CREATE TABLE accounts (
                id BIGSERIAL PRIMARY KEY,
                name TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'active',
                created_at BIGINT NOT NULL
            )
            """,
            "ALTER TABLE api_keys ADD COLUMN account_id BIGINT REFERENCES accounts(id) ON DELETE SET NULL",
            "CREATE INDEX api_keys_account_id ON api_keys (account_id)",
        ],
        // 6: the audit log of admin changes.
        [
            """
            CREATE TABLE audit_log (
                id BIGSERIAL PRIMARY KEY,
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                before TEXT,
                after TEXT
            )
            """,
        ],
        // 7: cordons shared through the store when there is no Redis.
        [
            """
            CREATE TABLE node_cordons (
                network TEXT NOT NULL,
                node TEXT NOT NULL,
                cordoned_at BIGINT NOT NULL,
                PRIMARY KEY (network, node)
            )
            """,
        ],
    ]

    /// The schema version this build expects.
    public static var latest: Int { steps.count }

    /// How long a migration may take. Not the query timeout (2 s by default): replicas that
    /// start together wait on one another's advisory lock, and DDL on a loaded server is slow.
    /// Cut short, a migration whose COMMIT had already landed would be retried and report
    /// nothing applied; a replica would give up starting.
    public static let timeout: Duration = .seconds(60)

    /// Applies what is missing; returns the versions it applied (empty when up to date).
    @discardableResult
    public static func run(on cluster: PostgresCluster, timeout: Duration = PostgresMigrations.timeout) async throws -> [Int] {
        let logger = cluster.logger
        return try await cluster.write(timeout: timeout) { connection in
            try await connection.withTransaction(logger: logger) { connection in
                try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
                try await connection.query(
                    """
                    CREATE TABLE IF NOT EXISTS tollgate_migrations (
                        version INTEGER PRIMARY KEY,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                    )
                    """, logger: logger)
                var current = 0
                for try await version in try await connection.query(
                    "SELECT coalesce(max(version), 0)::INT8 FROM tollgate_migrations", logger: logger
                ).decode(Int64.self) {
                    current = Int(version)
                }
                guard current <= steps.count else { throw PostgresStoreError.newerSchema(current) }
                var applied: [Int] = []
                for (index, statements) in steps.enumerated() where index >= current {
                    for statement in statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    let version = index + 1
                    try await connection.query("INSERT INTO tollgate_migrations (version) VALUES (\(version))", logger: logger)
                    applied.append(version)
                }
                return applied
            }
        }
    }

    /// The version the database is at (0 before the first migration).
    public static func version(on cluster: PostgresCluster) async throws -> Int {
        try await cluster.read { connection in
            let exists = try await connection.query("SELECT to_regclass('tollgate_migrations') IS NOT NULL", logger: cluster.logger)
            for try await present in exists.decode(Bool.self) where !present { return 0 }
            for try await version in try await connection.query(
                "SELECT coalesce(max(version), 0)::INT8 FROM tollgate_migrations", logger: cluster.logger
            ).decode(Int64.self) {
                return Int(version)
            }
            return 0
        }
    }
}
