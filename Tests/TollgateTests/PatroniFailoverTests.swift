import Foundation
import Synchronization
import Testing
import TollgatePostgres
import TollgateTestSupport

/// The key store's failover drill, short form: PostgreSQL under Patroni (deploy/patroni/patroni.yml
/// as it ships, etcd, a primary and a standby), the gateway under load, the primary's Patroni and
/// PostgreSQL killed. Patroni promotes the standby on its own; known keys are answered throughout
/// and new keys can be issued once the standby is primary.
@Suite(.serialized) struct PatroniFailoverTests {
    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/patroni")
    static let password = "tollgate-test"

    @Test func patroniPromotesTheStandbyAndNoKnownKeyIsRefused() async throws {
        let base = try await ClickHouseServer.freePortRun(6, range: 18_000...19_900)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("patroni-\(UUID().uuidString)").path
        try await ClickHouseServer.script([Self.script, "start", directory, String(base)])
        let hosts = [base + 2, base + 4]
        let node = try await FakeNode.start()
        var gateway: GatewayHarness?
        do {
            let settings = PostgresSettings(
                hosts: hosts.map { .init(host: "127.0.0.1", port: $0) }, database: "tollgate", user: "tollgate", password: Self.password,
                poolSize: 2, queryTimeout: .seconds(2), connectTimeout: .milliseconds(500))
            let migrator = PostgresCluster(settings: settings, logger: PostgresKeyStoreTests.logger)
            _ = try await migrator.withRunning { try await PostgresMigrations.run(on: migrator) }
            let passwordFile = directory + "/tollgate.password"
            try Self.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
            let harness = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.oneNodeYAML + """
                server:
                  auth_cache: {positive_ttl_ms: 200, negative_ttl_ms: 200}
                store:
                  max_stale_ms: 60000
                  postgres:
                    hosts: ["127.0.0.1:\(hosts[0])", "127.0.0.1:\(hosts[1])"]
                    database: tollgate
                    user: tollgate
                    password_file: \(passwordFile)
                    query_timeout_ms: 500
                    connect_timeout_ms: 300
                """)
            gateway = harness
            let key = try await harness.key()
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
            #expect(try await harness.post(body, key: key).status == 200)

            let events = Mutex<[String]>([])
            let result = try await LoadDriver.run(
                ports: [harness.port], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 2, duration: .seconds(32),
                during: {
                    try await Task.sleep(for: .seconds(1))
                    let primary = try await Self.primary(directory)
                    let killed = ContinuousClock.now
                    try await ClickHouseServer.script([Self.script, "kill", directory, primary == hosts[0] ? "0" : "1"])
                    // Patroni's leader key expires (ttl 20 s) and the standby takes the lock.
                    let promoted = await eventually(timeout: .seconds(45)) { try await Self.primary(directory) != primary }
                    let promotedAfter = ContinuousClock.now - killed
                    // Keys can be issued again: the gateway's store finds the new primary itself.
                    var fresh: String?
                    var lastError = ""
                    _ = await eventually(timeout: .seconds(10)) {
                        do {
                            fresh = try await harness.key()
                        } catch {
                            lastError = String(reflecting: error)
                            throw error
                        }
                        return true
                    }
                    let issuedAfter = ContinuousClock.now - killed
                    var status = 0
                    if let fresh { status = try await harness.post(body, key: fresh).status }
                    events.withLock {
                        $0.append("promoted=\(promoted) after \(promotedAfter)")
                        $0.append("fresh=\(status) issued after \(issuedAfter) \(lastError)")
                    }
                })
            let lines = events.withLock { $0 }
            print("patroni failover under load: \(result.statuses), \(result.failures) failures, \(lines)")
            #expect(lines.first?.hasPrefix("promoted=true") == true, "\(lines)")
            #expect(lines.last?.hasPrefix("fresh=200") == true, "\(lines)")
            if lines.last?.hasPrefix("fresh=200") != true { print(Self.logTails(directory)) }
            let summary = "\(result.statuses), \(result.failures) failures"
            #expect(result.serverErrors == 0 && result.failures == 0, "\(summary)")
            #expect(result.count(200) == result.total && result.total > 100)
        } catch {
            Issue.record(error)
        }
        try? await gateway?.stop()
        await node.stop()
        try? await ClickHouseServer.script([Self.script, "stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The end of etcd's and each node's log, for a failure's report.
    static func logTails(_ directory: String) -> String {
        let logs = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".log") }.sorted() ?? []
        return logs.map { name in
            let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
            return "== \(name)\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(60).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// The PostgreSQL port of the node Patroni's REST API calls primary now.
    static func primary(_ directory: String) async throws -> Int {
        try await ClickHouseServer.script([script, "primary", directory])
        return Int(try String(contentsOfFile: directory + "/primary.port", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
}
