import Foundation
import Testing
import TollgateApp
import PostgresNIO
import TollgatePostgres
import TollgateTestSupport

/// Two gateways sharing one key store and a real Redis: a revocation or plan change announced
/// on Redis reaches both within a second, long before the auth cache's one-minute TTL.
@Suite(.serialized) struct RevocationTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    /// Runs `body` against two replicas on one SQLite file and one Redis, then tears them down.
    func withTwoReplicas(_ body: (GatewayHarness, GatewayHarness) async throws -> Void) async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start()
        defer { servers.destroy() }
        let node = try await FakeNode.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        let yaml = GatewayHarness.oneNodeYAML + """
              nochain:
                cu_per_second: 1000
                requests_per_second: 100
                deny_methods: ["eth_chainId"]
            server:
              auth_cache: {positive_ttl_ms: 60000}
            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(servers.base)"]
            """
        let first = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: directory)
        let second = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: directory)
        do {
            #expect(await eventually { try await first.metric(#"tollgate_backend_up{backend="redis"}"#) == 1 })
            try await body(first, second)
        } catch {
            Issue.record(error)
        }
        try await first.stop()
        try await second.stop()
        await node.stop()
    }

    /// Announces the change to `prefix` and expects both replicas to answer `status` within a second.
    func announce(_ prefix: String, key: String, on first: GatewayHarness, _ second: GatewayHarness, expect status: Int) async throws {
        let announced = ContinuousClock.now
        try await RedisConfigAnnouncer.announce(prefix: prefix, config: try #require(first.config.redis))
        #expect(await eventually(timeout: .seconds(1)) {
            let a = try await first.post(Self.body, key: key).status
            let b = try await second.post(Self.body, key: key).status
            return a == status && b == status
        })
        #expect(ContinuousClock.now - announced < .seconds(1))
    }

    @Test func aRevokedKeyIsRefusedByEveryReplicaWithinASecond() async throws {
        try await withTwoReplicas { first, second in
            let key = try await first.key()
            // Both replicas have the key cached.
            #expect(try await first.post(Self.body, key: key).status == 200)
            #expect(try await second.post(Self.body, key: key).status == 200)
            let prefix = String(key.prefix(11))
            #expect(try await first.app.keyStore.revoke(prefix: prefix))
            // Revoked in the store but not announced: the cache (60 s TTL) still serves it.
            #expect(try await second.post(Self.body, key: key).status == 200)
            try await announce(prefix, key: key, on: first, second, expect: 403)
        }
    }

    @Test func aPlanChangeReachesEveryReplicaWithinASecond() async throws {
        try await withTwoReplicas { first, second in
            let key = try await first.key(plan: "nochain")
            #expect(try await first.post(Self.body, key: key).status == 403)
            #expect(try await second.post(Self.body, key: key).status == 403)
            let prefix = String(key.prefix(11))
            #expect(try await first.app.keyStore.setPlan(prefix: prefix, plan: "big"))
            try await announce(prefix, key: key, on: first, second, expect: 200)
        }
    }

    @Test func withoutRedisPostgreSQLCarriesARevocationToEveryReplicaWithinASecond() async throws {
        let pg = try await PostgresServers.make(ports: 1)
        defer { pg.destroy() }
        try await pg.startPrimary()
        let migrator = PostgresCluster(settings: pg.settings([0]), logger: PostgresKeyStoreTests.logger)
        _ = try await migrator.withRunning { try await PostgresMigrations.run(on: migrator) }
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.oneNodeYAML + """
            server:
              auth_cache: {positive_ttl_ms: 60000}
            store:
              postgres:
                hosts: ["\(pg.address(0))"]
                database: tollgate
                user: tollgate
                password_file: \(try pg.passwordFile())
            """
        let first = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let second = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        do {
            let key = try await first.key()
            #expect(try await first.post(Self.body, key: key).status == 200)
            #expect(try await second.post(Self.body, key: key).status == 200)
            // LISTEN is not retroactive: wait until both replicas' feeds are listening.
            #expect(await eventually(timeout: .seconds(5)) { try await Self.listeners(pg) >= 2 })
            let revoked = ContinuousClock.now
            #expect(try await first.app.keyStore.revoke(prefix: String(key.prefix(11))))
            #expect(await eventually(timeout: .seconds(1)) {
                let a = try await first.post(Self.body, key: key).status
                let b = try await second.post(Self.body, key: key).status
                return a == 403 && b == 403
            })
            #expect(ContinuousClock.now - revoked < .seconds(1))
        } catch {
            Issue.record(error)
        }
        try await first.stop()
        try await second.stop()
        await node.stop()
    }

    /// Sessions whose last statement was a LISTEN: the replicas' key change feeds.
    static func listeners(_ pg: PostgresServers) async throws -> Int64 {
        let cluster = PostgresCluster(settings: pg.settings([0]), logger: PostgresKeyStoreTests.logger)
        return try await cluster.withRunning {
            try await cluster.read { connection in
                let rows = try await connection.query(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'", logger: PostgresKeyStoreTests.logger)
                for try await count in rows.decode(Int64.self) { return count }
                return 0
            }
        }
    }
}
