import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// Two gateways sharing one key store and a real Redis: a revocation announced on Redis is
/// refused by both within a second, long before the auth cache's one-minute TTL.
@Suite(.serialized) struct RevocationTests {
    @Test func aRevokedKeyIsRefusedByEveryReplicaWithinASecond() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try servers.start()
        let node = try await FakeNode.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        let yaml = GatewayHarness.oneNodeYAML + """
            server:
              auth_cache: {positive_ttl_ms: 60000}
            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(servers.base)"]
            """
        let first = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: directory)
        let second = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: directory)
        do {
            let key = try await first.key()
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#
            // Both replicas have the key cached.
            #expect(try await first.post(body, key: key).status == 200)
            #expect(try await second.post(body, key: key).status == 200)
            let prefix = String(key.prefix(11))
            #expect(try await first.app.keyStore.revoke(prefix: prefix))
            // Revoked in the store but not announced: the cache (60 s TTL) still serves it.
            #expect(try await second.post(body, key: key).status == 200)
            #expect(await eventually { try await first.metric(#"tollgate_backend_up{backend="redis"}"#) == 1 })
            let announced = ContinuousClock.now
            try await RedisConfigAnnouncer.announce(prefix: prefix, config: try #require(first.config.redis))
            #expect(await eventually(timeout: .seconds(1)) {
                let a = try await first.post(body, key: key).status
                let b = try await second.post(body, key: key).status
                return a == 403 && b == 403
            })
            #expect(ContinuousClock.now - announced < .seconds(1))
        } catch {
            Issue.record(error)
        }
        try await first.stop()
        try await second.stop()
        await node.stop()
        servers.destroy()
    }

    @Test func aPlanChangeReachesEveryReplicaWithinASecond() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try servers.start()
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
            let key = try await first.key(plan: "nochain")
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
            #expect(try await first.post(body, key: key).status == 403)
            #expect(try await second.post(body, key: key).status == 403)
            let prefix = String(key.prefix(11))
            #expect(try await first.app.keyStore.setPlan(prefix: prefix, plan: "big"))
            #expect(await eventually { try await first.metric(#"tollgate_backend_up{backend="redis"}"#) == 1 })
            let announced = ContinuousClock.now
            try await RedisConfigAnnouncer.announce(prefix: prefix, config: try #require(first.config.redis))
            #expect(await eventually(timeout: .seconds(1)) {
                let a = try await first.post(body, key: key).status
                let b = try await second.post(body, key: key).status
                return a == 200 && b == 200
            })
            #expect(ContinuousClock.now - announced < .seconds(1))
        } catch {
            Issue.record(error)
        }
        try await first.stop()
        try await second.stop()
        await node.stop()
        servers.destroy()
    }
}
