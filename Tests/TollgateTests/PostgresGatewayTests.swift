import Foundation
import Testing
import TollgateApp
import TollgateCore
import TollgatePostgres
import TollgateTestSupport

/// The gateway on a PostgreSQL primary and standby: the primary dies, the standby is promoted,
/// and keys keep working throughout.
@Suite(.serialized) struct PostgresGatewayTests {
    @Test func cachedKeysKeepWorkingThroughAFailoverAndNewKeysWorkAfterIt() async throws {
        let pg = try await PostgresServers.make(ports: 2)
        defer { pg.destroy() }
        try await pg.startPrimary(0)
        try await pg.startStandby(1, of: 0)
        let migrator = PostgresCluster(settings: pg.settings([0]), logger: PostgresKeyStoreTests.logger)
        _ = try await migrator.withRunning { try await PostgresMigrations.run(on: migrator) }
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.oneNodeYAML + """
            server:
              auth_cache: {positive_ttl_ms: 200, negative_ttl_ms: 200}
            store:
              max_stale_ms: 60000
              postgres:
                hosts: ["\(pg.address(0))", "\(pg.address(1))"]
                database: tollgate
                user: tollgate
                password_file: \(try pg.passwordFile())
                query_timeout_ms: 500
                connect_timeout_ms: 300
            """
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        do {
            let key = try await gateway.key()
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
            #expect(try await gateway.post(body, key: key).status == 200)
            let statuses = StateLog()
            // Requests run throughout: the primary is killed (lookups move to the standby), the
            // standby is promoted, and then it dies too, leaving no host at all.
            let result = try await LoadDriver.run(
                ports: [gateway.port], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 2, duration: .seconds(6),
                during: {
                    try await Task.sleep(for: .seconds(1))
                    try await pg.stop(0, kill: true)
                    try await Task.sleep(for: .seconds(1))
                    try await pg.promote(1)
                    // After the promotion: a new key is written to the new primary and served.
                    let fresh = try await gateway.key()
                    statuses.record("fresh=\(try await gateway.post(body, key: fresh).status)")
                    try await pg.stop(1, kill: true)
                    try await Task.sleep(for: .seconds(1))
                    // No host: cached keys are served stale, unknown keys fail closed, and the
                    // replica stays ready but says it is degraded.
                    let unknown = try await gateway.post(body, key: APIKeyToken.generate())
                    let ready = try await TestHTTPClient.connect(port: gateway.port).request(method: "GET", path: "/readyz", headers: [])
                    statuses.record("unknown=\(unknown.status) readyz=\(ready.status) \(ready.body)")
                })
            print("postgres failover under load: \(result.statuses), \(statuses.lines)")
            #expect(result.count(200) == result.total && result.failures == 0 && result.total > 100, "\(result.statuses), \(result.failures) failures")
            #expect(statuses.lines.first == "fresh=200")
            #expect(statuses.lines.last?.hasPrefix("unknown=503 readyz=200") == true)
            #expect(statuses.lines.last?.contains("keystore unreachable") == true)
            #expect(try await gateway.metric(#"tollgate_keycache_requests_total{result="stale"}"#) > 0)
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }
}
