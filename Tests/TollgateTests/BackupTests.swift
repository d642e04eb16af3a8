import Foundation
import Synchronization
import Testing
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
