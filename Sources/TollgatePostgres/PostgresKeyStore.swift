import Logging
import PostgresNIO
import TollgateCore

/// Keys and durable monthly usage in PostgreSQL, for replicas that share one key store.
///
/// Lookups read from any reachable host (a standby serves them while the primary is down);
/// creates, revocations and usage go to the primary. The gateway never waits on this store per
/// request: `KeyDirectory` caches answers and serves stale ones while the store is away.
public final class PostgresKeyStore: KeyStore, QuotaStore, Sendable {
    public let cluster: PostgresCluster
    private let logger: Logger

    public init(cluster: PostgresCluster) {
        self.cluster = cluster
        self.logger = cluster.logger
    }

    /// A key's columns, read through its account: an active key of a suspended account reads
    /// as `suspended` (the row itself stays `active`).
    static let columns = """
        k.id, k.prefix, k.hash, k.plan,
        CASE WHEN k.status = 'active' AND a.status = 'suspended' THEN 'suspended' ELSE k.status END,
        k.label, k.created_at, k.expires_at,
        k.allowed_ips, k.allowed_origins, k.allowed_methods, k.allowed_networks, k.allowed_contracts, k.allowed_user_agents,
        k.secret_hash, k.require_jwt, k.account_id
        FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id
        """

    private typealias Row = (
        Int64, String, String, String, String, String, Int64, Int64?, [String], [String], [String], [String], [String], [String],
        String?, Bool, Int64?
    )

    public func lookup(hash: KeyHash) async throws -> APIKeyRecord? {
        let logger = logger
        let hex = hash.hex
        return try await cluster.read { connection in
            let rows = try await connection.query(
                "SELECT \(unescaped: Self.columns) WHERE k.hash = \(hex)", logger: logger)
            for try await row in rows.decode(Row.self) { return try Self.record(row) }
            return nil
        }
    }

    public func create(_ record: APIKeyRecord) async throws -> APIKeyRecord {
        let logger = logger
        let id = try await cluster.write { connection in
            let rows = try await connection.query(
                """
                INSERT INTO api_keys (prefix, hash, plan, status, label, created_at, expires_at,
                    allowed_ips, allowed_origins, allowed_methods, allowed_networks, allowed_contracts, allowed_user_agents,
                    secret_hash, require_jwt, account_id)
                VALUES (\(record.prefix), \(record.hash.hex), \(record.plan), \(record.status.rawValue), \(record.label),
                    \(record.createdAt), \(record.expiresAt), \(record.allowedIPs), \(record.allowedOrigins),
                    \(record.allowedMethods), \(record.allowedNetworks), \(record.allowedContracts), \(record.allowedUserAgents),
                    \(record.secretHash?.hex), \(record.requireJWT), \(record.accountID))
                RETURNING id
                """, logger: logger)
            for try await id in rows.decode(Int64.self) { return id }
            return Int64(0)
        }
        var stored = record
        stored.id = id
        return stored
    }

    public func list() async throws -> [APIKeyRecord] {
        let logger = logger
        return try await cluster.read { connection in
            var records: [APIKeyRecord] = []
            let rows = try await connection.query("SELECT \(unescaped: Self.columns) ORDER BY k.id", logger: logger)
            for try await row in rows.decode(Row.self) { records.append(try Self.record(row)) }
            return records
        }
    }

    /// Where revocations and plan changes are announced (`NOTIFY`), delivered at commit.
    public static let changeChannel = "tollgate_keys"

    public func revoke(prefix: String) async throws -> Bool {
        try await update(prefix: prefix, set: "status = 'revoked'")
    }

    public func record(prefix: String) async throws -> APIKeyRecord? {
        let logger = logger
        return try await cluster.read { connection in
            let rows = try await connection.query(
                "SELECT \(unescaped: Self.columns) WHERE k.prefix = \(prefix)", logger: logger)
            for try await row in rows.decode(Row.self) { return try Self.record(row) }
            return nil
        }
    }

    public func setExpiry(prefix: String, expiresAt: Int64?) async throws -> Bool {
        // An integer written into the statement: nothing a caller could inject.
        try await update(prefix: prefix, set: "expires_at = " + (expiresAt.map(String.init) ?? "NULL"))
    }

    public func setPlan(prefix: String, plan: String) async throws -> Bool {
        let logger = logger
        return try await cluster.write { connection in
            let rows = try await connection.query(
                """
                WITH changed AS (
                    UPDATE api_keys SET plan = \(plan), updated_at = now() WHERE prefix = \(prefix) RETURNING prefix)
                SELECT count(pg_notify(\(Self.changeChannel), prefix)) FROM changed
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return count > 0 }
            return false
        }
    }

    public func update(_ record: APIKeyRecord) async throws -> Bool {
        let logger = logger
        return try await cluster.write { connection in
            let rows = try await connection.query(
                """
                WITH changed AS (
                    UPDATE api_keys SET plan = \(record.plan), label = \(record.label), expires_at = \(record.expiresAt),
                        allowed_ips = \(record.allowedIPs), allowed_origins = \(record.allowedOrigins),
                        allowed_methods = \(record.allowedMethods), allowed_networks = \(record.allowedNetworks),
                        allowed_contracts = \(record.allowedContracts), allowed_user_agents = \(record.allowedUserAgents),
                        require_jwt = \(record.requireJWT), account_id = \(record.accountID), updated_at = now()
                    WHERE prefix = \(record.prefix) RETURNING prefix)
                SELECT count(pg_notify(\(Self.changeChannel), prefix)) FROM changed
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return count > 0 }
            return false
        }
    }

    /// Updates the key and announces the change to every replica listening, in one statement.
    private func update(prefix: String, set assignment: String) async throws -> Bool {
        let logger = logger
        return try await cluster.write { connection in
            let rows = try await connection.query(
                """
                WITH changed AS (
                    UPDATE api_keys SET \(unescaped: assignment), updated_at = now() WHERE prefix = \(prefix) RETURNING prefix)
                SELECT count(pg_notify(\(Self.changeChannel), prefix)) FROM changed
                """, logger: logger)
            for try await count in rows.decode(Int64.self) { return count > 0 }
            return false
        }
    }

    /// True when some host answers: lookups can be served.
    public func ping() async -> Bool {
        (try? await cluster.read { connection in
            try await connection.query("SELECT 1", logger: self.logger)
            return true
        }) ?? false
    }

    public func usage(keyID: Int64, period: String) async throws -> Int64 {
        let logger = logger
        return try await cluster.read { connection in
            let rows = try await connection.query(
                "SELECT compute_units FROM usage WHERE key_id = \(keyID) AND period = \(period)", logger: logger)
            for try await units in rows.decode(Int64.self) { return units }
            return 0
        }
    }

    public func add(_ amounts: [Int64: Int64], period: String) async throws {
        _ = try await addReturningTotals(amounts, period: period)
    }

    /// Adds in one statement and returns each key's new total for the period.
    public func addReturningTotals(_ amounts: [Int64: Int64], period: String) async throws -> [Int64: Int64] {
        guard !amounts.isEmpty else { return [:] }
        let logger = logger
        let ids = Array(amounts.keys)
        let units = ids.map { amounts[$0]! }
        return try await cluster.write { connection in
            let rows = try await connection.query(
                """
                INSERT INTO usage (key_id, period, compute_units)
                SELECT k, \(period), u FROM unnest(\(ids)::INT8[], \(units)::INT8[]) AS t(k, u)
                ON CONFLICT (key_id, period) DO UPDATE SET compute_units = usage.compute_units + excluded.compute_units
                RETURNING key_id, compute_units
                """, logger: logger)
            var totals: [Int64: Int64] = [:]
            for try await (id, total) in rows.decode((Int64, Int64).self) { totals[id] = total }
            return totals
        }
    }

    /// One transaction: record the batch id, add only if it is new, return the totals. Ids older
    /// than a week are pruned now and then (a retry never comes that late).
    public func addBatch(_ amounts: [Int64: Int64], period: String, batchID: String) async throws -> [Int64: Int64] {
        guard !amounts.isEmpty else { return [:] }
        let logger = logger
        let ids = Array(amounts.keys)
        let units = ids.map { amounts[$0]! }
        let prune = UInt8.random(in: 0...255) == 0
        return try await cluster.write { connection in
            try await connection.withTransaction(logger: logger) { connection in
                let inserted = try await connection.query(
                    "INSERT INTO usage_batches (id) VALUES (\(batchID)) ON CONFLICT DO NOTHING RETURNING id", logger: logger)
                var isNew = false
                for try await _ in inserted.decode(String.self) { isNew = true }
                if isNew {
                    try await connection.query(
                        """
                        INSERT INTO usage (key_id, period, compute_units)
                        SELECT k, \(period), u FROM unnest(\(ids)::INT8[], \(units)::INT8[]) AS t(k, u)
                        ON CONFLICT (key_id, period) DO UPDATE SET compute_units = usage.compute_units + excluded.compute_units
                        """, logger: logger)
                }
                if prune {
                    try await connection.query("DELETE FROM usage_batches WHERE created_at < now() - interval '7 days'", logger: logger)
                }
                var totals: [Int64: Int64] = [:]
                let rows = try await connection.query(
                    "SELECT key_id, compute_units FROM usage WHERE period = \(period) AND key_id = ANY(\(ids)::INT8[])", logger: logger)
                for try await (id, total) in rows.decode((Int64, Int64).self) { totals[id] = total }
                return totals
            }
        }
    }

    private static func record(_ row: Row) throws -> APIKeyRecord {
        guard let hash = KeyHash(hex: row.2) else { throw PostgresRecordError.badHash(id: row.0) }
        return APIKeyRecord(
            id: row.0, prefix: row.1, hash: hash, plan: row.3, status: APIKeyRecord.Status(rawValue: row.4) ?? .revoked,
            label: row.5, createdAt: row.6, expiresAt: row.7, allowedIPs: row.8, allowedOrigins: row.9,
            allowedMethods: row.10, allowedNetworks: row.11, allowedContracts: row.12, allowedUserAgents: row.13,
            secretHash: row.14.flatMap { KeyHash(hex: $0) }, requireJWT: row.15, accountID: row.16)
    }
}

enum PostgresRecordError: Error {
    case badHash(id: Int64)
}
