import Foundation
import Logging
import SQLiteNIO
import TollgateCore

/// Keys and monthly usage in one SQLite file: the embedded shape's only store.
///
/// WAL mode lets `tollgate keys …` write while `tollgate serve` reads the same file; the
/// server sees a revocation once its cache entry for the key expires (the positive TTL).
public final class SQLiteKeyStore: KeyStore, QuotaStore {
    let connection: SQLiteConnection

    private init(connection: SQLiteConnection) {
        self.connection = connection
    }

    /// Opens (creating if needed) and migrates the database at `path`.
    public static func open(path: String, logger: Logger = Logger(label: "tollgate.sqlite")) async throws -> SQLiteKeyStore {
        let connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        do {
            _ = try await connection.query("PRAGMA journal_mode=WAL")
            _ = try await connection.query("PRAGMA busy_timeout=5000")
            _ = try await connection.query("PRAGMA synchronous=NORMAL")
            try await SQLiteMigrations.run(on: connection)
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteKeyStore(connection: connection)
    }

    /// What a backup holds, read back from the copy itself.
    public struct BackupSummary: Sendable, Equatable {
        public var keys: Int
        public var bytes: Int
    }

    /// An online, consistent copy of the store at `path` (`VACUUM INTO`): one read transaction,
    /// so the server keeps answering and writing while it runs, and the copy is checked
    /// (`PRAGMA integrity_check`) before it takes its name. An existing file at `path` stays
    /// untouched: the copy is written beside it and renamed over it only when whole.
    public func backup(to path: String, logger: Logger = Logger(label: "tollgate.sqlite")) async throws -> BackupSummary {
        let partial = path + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        _ = try await connection.query("VACUUM INTO ?", [.text(partial)])
        let copy = try await SQLiteConnection.open(storage: .file(path: partial), logger: logger)
        let summary: BackupSummary
        do {
            let check = try await copy.query("PRAGMA integrity_check").first?.column("integrity_check")?.string
            guard check == "ok" else { throw BackupFailed(reason: "the copy fails its integrity check: \(check ?? "no answer")") }
            let keys = try await copy.query("SELECT count(*) AS n FROM api_keys").first?.column("n")?.integer ?? 0
            try await copy.close()
            let bytes = (try FileManager.default.attributesOfItem(atPath: partial)[.size] as? NSNumber)?.intValue ?? 0
            summary = BackupSummary(keys: keys, bytes: bytes)
        } catch {
            try? await copy.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        guard rename(partial, path) == 0 else { throw BackupFailed(reason: "cannot rename \(partial) to \(path): errno \(errno)") }
        return summary
    }

    public struct BackupFailed: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    public func close() async {
        try? await connection.close()
    }

    public func lookup(hash: KeyHash) async throws -> APIKeyRecord? {
        let rows = try await connection.query("SELECT \(Self.columns) WHERE k.hash = ?", [.text(hash.hex)])
        return try rows.first.map(Self.record)
    }

    public func create(_ record: APIKeyRecord) async throws -> APIKeyRecord {
        let rows = try await connection.query(
            """
            INSERT INTO api_keys (prefix, hash, plan, status, label, created_at, expires_at,
                allowed_ips, allowed_origins, allowed_methods, allowed_networks, allowed_contracts, allowed_user_agents,
                secret_hash, require_jwt, account_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """,
            [
                .text(record.prefix), .text(record.hash.hex), .text(record.plan), .text(record.status.rawValue),
                .text(record.label), .integer(Int(record.createdAt)), record.expiresAt.map { .integer(Int($0)) } ?? .null,
                .text(Self.list(record.allowedIPs)), .text(Self.list(record.allowedOrigins)),
                .text(Self.list(record.allowedMethods)), .text(Self.list(record.allowedNetworks)),
                .text(Self.list(record.allowedContracts)), .text(Self.list(record.allowedUserAgents)),
                record.secretHash.map { .text($0.hex) } ?? .null, .integer(record.requireJWT ? 1 : 0),
                record.accountID.map { .integer(Int($0)) } ?? .null,
            ])
        var stored = record
        stored.id = Int64(rows.first?.column("id")?.integer ?? 0)
        return stored
    }

    public func list() async throws -> [APIKeyRecord] {
        try await connection.query("SELECT \(Self.columns) ORDER BY k.id").map(Self.record)
    }

    public func revoke(prefix: String) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE api_keys SET status = 'revoked' WHERE prefix = ? RETURNING id", [.text(prefix)])
        return !rows.isEmpty
    }

    public func record(prefix: String) async throws -> APIKeyRecord? {
        let rows = try await connection.query("SELECT \(Self.columns) WHERE k.prefix = ?", [.text(prefix)])
        return try rows.first.map(Self.record)
    }

    public func setExpiry(prefix: String, expiresAt: Int64?) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE api_keys SET expires_at = ? WHERE prefix = ? RETURNING id",
            [expiresAt.map { .integer(Int($0)) } ?? .null, .text(prefix)])
        return !rows.isEmpty
    }

    public func setPlan(prefix: String, plan: String) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE api_keys SET plan = ? WHERE prefix = ? RETURNING id", [.text(plan), .text(prefix)])
        return !rows.isEmpty
    }

    public func update(_ record: APIKeyRecord) async throws -> Bool {
        let rows = try await connection.query(
            """
            UPDATE api_keys SET plan = ?, label = ?, expires_at = ?, allowed_ips = ?, allowed_origins = ?, allowed_methods = ?,
                allowed_networks = ?, allowed_contracts = ?, allowed_user_agents = ?, require_jwt = ?, account_id = ?
            WHERE prefix = ? RETURNING id
            """,
            [
                .text(record.plan), .text(record.label), record.expiresAt.map { .integer(Int($0)) } ?? .null,
                .text(Self.list(record.allowedIPs)), .text(Self.list(record.allowedOrigins)), .text(Self.list(record.allowedMethods)),
                .text(Self.list(record.allowedNetworks)), .text(Self.list(record.allowedContracts)),
                .text(Self.list(record.allowedUserAgents)), .integer(record.requireJWT ? 1 : 0),
                record.accountID.map { .integer(Int($0)) } ?? .null, .text(record.prefix),
            ])
        return !rows.isEmpty
    }

    public func ping() async -> Bool {
        (try? await connection.query("SELECT 1")) != nil
    }

    public func usage(keyID: Int64, period: String) async throws -> Int64 {
        let rows = try await connection.query(
            "SELECT compute_units FROM usage WHERE key_id = ? AND period = ?", [.integer(Int(keyID)), .text(period)])
        return Int64(rows.first?.column("compute_units")?.integer ?? 0)
    }

    public func add(_ amounts: [Int64: Int64], period: String) async throws {
        guard !amounts.isEmpty else { return }
        // One statement: the whole flush lands or none of it does.
        let values = Array(repeating: "(?, ?, ?)", count: amounts.count).joined(separator: ", ")
        var binds: [SQLiteData] = []
        for (keyID, amount) in amounts { binds += [.integer(Int(keyID)), .text(period), .integer(Int(amount))] }
        _ = try await connection.query(
            """
            INSERT INTO usage (key_id, period, compute_units) VALUES \(values)
            ON CONFLICT (key_id, period) DO UPDATE SET compute_units = compute_units + excluded.compute_units
            """, binds)
    }

    /// A key's columns, read through its account: an active key of a suspended account reads
    /// as `suspended` (the row itself stays `active`).
    static let columns = """
        k.id AS id, k.prefix AS prefix, k.hash AS hash, k.plan AS plan,
        CASE WHEN k.status = 'active' AND a.status = 'suspended' THEN 'suspended' ELSE k.status END AS status,
        k.label AS label, k.created_at AS created_at, k.expires_at AS expires_at, k.allowed_ips AS allowed_ips,
        k.allowed_origins AS allowed_origins, k.allowed_methods AS allowed_methods, k.allowed_networks AS allowed_networks,
        k.allowed_contracts AS allowed_contracts, k.allowed_user_agents AS allowed_user_agents, k.secret_hash AS secret_hash,
        k.require_jwt AS require_jwt, k.account_id AS account_id
        FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id
        """

    private static func record(_ row: SQLiteRow) throws -> APIKeyRecord {
        guard let hashText = row.column("hash")?.string, let hash = KeyHash(hex: hashText) else {
            throw SQLiteStoreError.corruptRow("api_keys.hash")
        }
        return APIKeyRecord(
            id: Int64(row.column("id")?.integer ?? 0),
            prefix: row.column("prefix")?.string ?? "",
            hash: hash,
            plan: row.column("plan")?.string ?? "",
            status: APIKeyRecord.Status(rawValue: row.column("status")?.string ?? "") ?? .revoked,
            label: row.column("label")?.string ?? "",
            createdAt: Int64(row.column("created_at")?.integer ?? 0),
            expiresAt: row.column("expires_at")?.integer.map(Int64.init),
            allowedIPs: items(row.column("allowed_ips")?.string),
            allowedOrigins: items(row.column("allowed_origins")?.string),
            allowedMethods: items(row.column("allowed_methods")?.string),
            allowedNetworks: items(row.column("allowed_networks")?.string),
            allowedContracts: items(row.column("allowed_contracts")?.string),
            allowedUserAgents: items(row.column("allowed_user_agents")?.string),
            secretHash: row.column("secret_hash")?.string.flatMap { KeyHash(hex: $0) },
            requireJWT: (row.column("require_jwt")?.integer ?? 0) != 0,
            accountID: row.column("account_id")?.integer.map(Int64.init))
    }

    /// Lists are stored newline-separated: none of their values (CIDRs, origins, method globs,
    /// network names, addresses, user agents) may contain a newline; `KeyIssuer` refuses any that would.
    private static func list(_ values: [String]) -> String { values.joined(separator: "\n") }

    private static func items(_ text: String?) -> [String] {
        guard let text, !text.isEmpty else { return [] }
        return text.split(separator: "\n").map(String.init)
    }
}

public enum SQLiteStoreError: Error, CustomStringConvertible {
    case corruptRow(String)
    case newerSchema(Int)

    public var description: String {
        switch self {
        case .corruptRow(let column): "corrupt value in \(column)"
        case .newerSchema(let version): "database schema version \(version) is newer than this tollgate understands"
        }
    }
}
