import Foundation
import Logging
import TollgatePostgres

/// Real PostgreSQL servers for one test (a primary, optionally a streaming standby), started by
/// `scripts/servers/postgres` on free loopback ports with their clusters in a temp folder.
final class PostgresServers: Sendable {
    let directory: String
    let base: Int

    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/postgres")
    static let password = "tollgate-test"

    static func make(ports count: Int = 2) async throws -> PostgresServers {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pg-\(UUID().uuidString)").path
        return PostgresServers(directory: directory, base: try await ClickHouseServer.freePortRun(count, range: 14_000...15_900))
    }

    private init(directory: String, base: Int) {
        self.directory = directory
        self.base = base
    }

    func port(_ offset: Int) -> Int { base + offset }
    func address(_ offset: Int) -> String { "127.0.0.1:\(base + offset)" }

    func startPrimary(_ offset: Int = 0) async throws { try await ClickHouseServer.script([Self.script, "start", directory, String(port(offset))]) }

    /// A primary that also speaks TLS, with a fresh CA; returns the CA's PEM path.
    /// - Parameter clientCertificate: the `tollgate` role must also present one (DIR/tls/client.{crt,key}).
    func startTLSPrimary(_ offset: Int = 0, clientCertificate: Bool = false) async throws -> String {
        try await ClickHouseServer.script(["-c", "TLS=\(clientCertificate ? 2 : 1) exec bash \"$0\" \"$@\"", Self.script, "start", directory, String(port(offset))])
        return directory + "/tls/ca.crt"
    }

    /// A primary that archives every finished WAL segment (to DIR/archive), for point-in-time restores.
    func startArchivingPrimary(_ offset: Int = 0) async throws {
        try await ClickHouseServer.script(["-c", "ARCHIVE=1 exec bash \"$0\" \"$@\"", Self.script, "start", directory, String(port(offset))])
    }

    func baseBackup(_ offset: Int, name: String) async throws {
        try await ClickHouseServer.script([Self.script, "basebackup", directory, String(port(offset)), name])
    }

    /// The server's `clock_timestamp()`, as PostgreSQL writes it.
    func clock(_ offset: Int) async throws -> String {
        try await ClickHouseServer.script([Self.script, "clock", directory, String(port(offset))])
        return try String(contentsOfFile: directory + "/clock", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Switches WAL and waits until the segment is in the archive.
    func archiveWAL(_ offset: Int) async throws {
        try await ClickHouseServer.script([Self.script, "archive", directory, String(port(offset))])
    }

    /// The base backup `name`, recovered from the archive to `time` and promoted, on `offset`.
    func restore(_ name: String, to offset: Int, at time: String) async throws {
        try await ClickHouseServer.script([Self.script, "restore", directory, name, String(port(offset)), time])
    }

    func startStandby(_ offset: Int, of primary: Int = 0) async throws {
        try await ClickHouseServer.script([Self.script, "standby", directory, String(port(offset)), String(port(primary))])
    }

    func promote(_ offset: Int) async throws { try await ClickHouseServer.script([Self.script, "promote", directory, String(port(offset))]) }

    func stop(_ offset: Int, kill: Bool = false) async throws {
        try await ClickHouseServer.script([Self.script, "stop", directory, String(port(offset))] + (kill ? ["--kill"] : []))
    }

    /// A file holding the `tollgate` role's password, for `password_file`.
    func passwordFile() throws -> String {
        let path = directory + "/tollgate.password"
        try Self.password.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func settings(_ offsets: [Int], queryTimeout: Duration = .seconds(1)) -> PostgresSettings {
        PostgresSettings(
            hosts: offsets.map { .init(host: "127.0.0.1", port: port($0)) }, database: "tollgate", user: "tollgate",
            password: Self.password, poolSize: 4, queryTimeout: queryTimeout, connectTimeout: .milliseconds(500))
    }

    func destroy() {
        try? ClickHouseServer.run([Self.script, "stop", directory, "--kill"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}

extension PostgresServers {
    /// One primary, migrated to the latest schema: a key store for gateways (`storeYAML`).
    static func migratedPrimary() async throws -> PostgresServers {
        let pg = try await make(ports: 1)
        try await pg.startPrimary(0)
        let migrator = PostgresCluster(settings: pg.settings([0], queryTimeout: .seconds(10)), logger: PostgresKeyStoreTests.logger)
        _ = try await migrator.withRunning { try await PostgresMigrations.run(on: migrator) }
        return pg
    }

    /// The `store:` section that points a gateway at the primary.
    func storeYAML() throws -> String {
        """

        store:
          postgres:
            hosts: ["\(address(0))"]
            database: tollgate
            user: tollgate
            password_file: \(try passwordFile())
            query_timeout_ms: 5000

        """
    }
}
