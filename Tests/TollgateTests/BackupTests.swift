import Foundation
import Synchronization
import Testing
import TollgateApp
import TollgatePostgres
import TollgateTestSupport

/// `tollgate backup`: the embedded store copied while the server answers, and a server started
/// on the copy knows every key the copy was taken with and none issued after.
@Suite struct BackupTests {
    @Test func aBackupTakenUnderLoadRestoresTheKeysOfItsMoment() async throws {
        let node = try await FakeNode.start()
        let live = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.oneNodeYAML)
        let before = try await live.key()
        let config = live.directory + "/cli.yaml"
        try (GatewayHarness.oneNodeYAML.replacingOccurrences(of: "{NODE0}", with: node.url) + """
            store:
              sqlite: \(live.directory)/tollgate.db
            """).write(toFile: config, atomically: true, encoding: .utf8)
        let copy = live.directory + "/backups/tollgate-backup.db"
        try FileManager.default.createDirectory(atPath: live.directory + "/backups", withIntermediateDirectories: true)
        // A stale file where the copy goes: replaced only by a whole copy.
        try "not a database".write(toFile: copy, atomically: true, encoding: .utf8)

        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        let outcome = Mutex<ChildProcess.Result?>(nil)
        let load = try await LoadDriver.run(
            ports: [live.port], path: "/v1/ethereum/\(before)", body: body, connectionsPerPort: 2, duration: .seconds(2),
            during: {
                let result = try await ChildProcess.run(CLITests.binary, ["backup", "--config", config, "--to", copy])
                outcome.withLock { $0 = result }
            })
        let backup = try #require(outcome.withLock { $0 })
        #expect(backup.status == 0, "\(backup.output)")
        #expect(backup.output.contains("1 keys") && backup.output.contains("integrity checked"), "\(backup.output)")
        #expect(load.failures == 0 && load.count(200) == load.total && load.total > 0, "\(load.statuses)")
        #expect(!FileManager.default.fileExists(atPath: copy + ".partial"))
        let after = try await live.key()

        // Restore: the copy as another server's store.
        let restored = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-restore-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: restored, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: copy, toPath: restored + "/tollgate.db")
        let second = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.oneNodeYAML, directory: restored)
        #expect(try await second.post(body, key: before).status == 200)
        #expect(try await second.post(body, key: after).status == 401)

        // Nowhere to write: a clear failure, nothing left behind.
        let nowhere = try await ChildProcess.run(CLITests.binary, ["backup", "--config", config, "--to", live.directory + "/missing/dir/x.db"])
        #expect(nowhere.status == 1)
        #expect(nowhere.output.contains("backup failed"), "\(nowhere.output)")
        try await second.stop()
        try await live.stop()
        await node.stop()
    }
}

/// PostgreSQL's base backup and WAL archive, restored to a point in time between two keys: a
/// gateway on the restored server knows the first and not the second.
@Suite(.serialized) struct PostgresPointInTimeTests {
    @Test func aStoreRestoredToAMomentKnowsTheKeysIssuedBeforeItAndNoneAfter() async throws {
        let pg = try await PostgresServers.make(ports: 2)
        defer { pg.destroy() }
        try await pg.startArchivingPrimary(0)
        let node = try await FakeNode.start()
        func yaml(_ offset: Int) throws -> String {
            GatewayHarness.oneNodeYAML + """
                store:
                  postgres:
                    hosts: ["\(pg.address(offset))"]
                    database: tollgate
                    user: tollgate
                    password_file: \(try pg.passwordFile())
                    # Generous: beside the parallel suites a connection can take a while.
                    query_timeout_ms: 10000
                    connect_timeout_ms: 10000
                """
        }
        let migrator = PostgresCluster(settings: pg.settings([0]), logger: PostgresKeyStoreTests.logger)
        _ = try await migrator.withRunning { try await PostgresMigrations.run(on: migrator) }
        try await pg.baseBackup(0, name: "base")

        let primary = try await GatewayHarness.start(nodes: [node], yaml: try yaml(0))
        let before = try await primary.key()
        let moment = try await pg.clock(0)
        let after = try await primary.key()
        try await pg.archiveWAL(0)
        try await primary.stop()

        try await pg.restore("base", to: 1, at: moment)
        let restored = try await GatewayHarness.start(nodes: [node], yaml: try yaml(1))
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        #expect(try await restored.post(body, key: before).status == 200)
        #expect(try await restored.post(body, key: after).status == 401)
        // The restored server is a primary: keys can be issued on it.
        let fresh = try await restored.key()
        #expect(try await restored.post(body, key: fresh).status == 200)
        try await restored.stop()
        await node.stop()
    }
}

/// One month of telemetry saved (`deploy/clickhouse/partition-backup save`: FREEZE, parts
/// copied off), lost (DROP PARTITION), and restored (parts attached) with every row, the other
/// months untouched.
@Suite struct ClickHousePartitionBackupTests {
    static let tool = RunbookTests.root.appendingPathComponent("deploy/clickhouse/partition-backup").path

    @Test func aSavedMonthComesBackWithEveryRow() async throws {
        let clickhouse = try await ClickHouseServer.start()
        do {
            try await ClickHouseTelemetryTests.migrate(clickhouse)
            for (month, rows) in [("2026-11-15", 1000), ("2026-12-01", 200)] {
                _ = try await clickhouse.query("""
                    INSERT INTO tollgate.requests (ts, ts_ms, request_id, key_prefix, network, method)
                    SELECT toDateTime('\(month) 12:00:00') + number, 0, concat('\(month)-', toString(number)), 'tg_live_a', 'ethereum', 'eth_call'
                    FROM system.numbers LIMIT \(rows)
                    """)
            }
            let november = "SELECT count(), sum(cityHash64(request_id)) FROM tollgate.requests WHERE toYYYYMM(ts) = 202611"
            let december = "SELECT count() FROM tollgate.requests WHERE toYYYYMM(ts) = 202612"
            let saved = try await clickhouse.query(november)
            #expect(saved.hasPrefix("1000\t"))
            let folder = clickhouse.directory + "/backup-202611"
            let arguments = [clickhouse.url, clickhouse.directory + "/data", "tollgate.requests", "202611", folder]
            let save = try await ChildProcess.run(Self.tool, ["save"] + arguments)
            #expect(save.status == 0, "\(save.output)")
            #expect(save.output.contains("1000 rows saved"), "\(save.output)")

            // Refused while the month is still there (it would be doubled).
            let early = try await ChildProcess.run(Self.tool, ["restore"] + arguments)
            #expect(early.status == 1 && early.output.contains("drop it first"), "\(early.output)")

            _ = try await clickhouse.query("ALTER TABLE tollgate.requests DROP PARTITION ID '202611'")
            #expect(try await clickhouse.query(november).hasPrefix("0\t"))
            let restore = try await ChildProcess.run(Self.tool, ["restore"] + arguments)
            #expect(restore.status == 0, "\(restore.output)")
            #expect(try await clickhouse.query(november) == saved)
            #expect(try await clickhouse.query(december) == "200")
        } catch {
            Issue.record(error)
        }
        await clickhouse.destroy()
    }
}
