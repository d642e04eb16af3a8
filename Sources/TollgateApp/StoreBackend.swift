import Logging
import ServiceLifecycle
import TollgateCore
import TollgatePostgres
import TollgateSQLite

/// The key and usage store the config names: SQLite (embedded) or PostgreSQL (distributed).
/// Commands and the server open it the same way, so `keys create|list|revoke` behave alike.
public struct StoreBackend: Sendable {
    public let store: any KeyBackendStore
    /// The PostgreSQL pools, which must run (as a `Service` or inside `use`) to answer.
    public let cluster: PostgresCluster?
    let sqlite: SQLiteKeyStore?

    public static func open(_ config: StoreConfig, logger: Logger) async throws -> StoreBackend {
        if let postgres = config.postgres {
            // A client certificate that does not load stops the start with its reason.
            try PostgresCluster.checkClientCertificate(postgres.settings())
            let cluster = PostgresCluster(settings: postgres.settings(), logger: logger)
            return StoreBackend(store: PostgresKeyStore(cluster: cluster), cluster: cluster, sqlite: nil)
        }
        let sqlite = try await SQLiteKeyStore.open(path: config.sqlitePath, logger: logger)
        return StoreBackend(store: sqlite, cluster: nil, sqlite: sqlite)
    }

    init(store: any KeyBackendStore, cluster: PostgresCluster?, sqlite: SQLiteKeyStore?) {
        self.store = store
        self.cluster = cluster
        self.sqlite = sqlite
    }

    public init(sqlite: SQLiteKeyStore) {
        self.init(store: sqlite, cluster: nil, sqlite: sqlite)
    }

    /// Runs `body` with the store answering, then closes it: for one-shot commands.
    public func use<T: Sendable>(_ body: @Sendable (any KeyBackendStore) async throws -> T) async throws -> T {
        defer { Task { [sqlite] in await sqlite?.close() } }
        if let cluster {
            let store = self.store
            return try await cluster.withRunning { try await body(store) }
        }
        return try await body(store)
    }

    /// Creates or upgrades the PostgreSQL schema; SQLite migrates itself when opened.
    /// Returns a line for the operator.
    public func migrate() async throws -> String {
        guard let cluster else { return "ok: SQLite migrates itself when opened" }
        return try await cluster.withRunning {
            let applied = try await PostgresMigrations.run(on: cluster)
            let where_ = cluster.primaryHost ?? "?"
            return applied.isEmpty
                ? "ok: schema already at version \(PostgresMigrations.latest) on \(where_)"
                : "ok: applied migrations \(applied.map(String.init).joined(separator: ", ")) on \(where_)"
        }
    }

    /// An online copy of the embedded store (`tollgate backup`); a line for the operator.
    /// PostgreSQL has its own tools for this (docs/runbooks/backups.md): nil.
    public func backup(to path: String) async throws -> String? {
        guard let sqlite else { return nil }
        defer { Task { await sqlite.close() } }
        let summary = try await sqlite.backup(to: path)
        return "ok: \(path): \(summary.keys) keys, \(summary.bytes) bytes, integrity checked"
    }

    func close() async {
        await sqlite?.close()
    }
}
