import Foundation
import Synchronization
import Testing
import TollgateRedis
import TollgateTestSupport

/// A gateway whose shared limits live in a real Redis that dies under load and comes back.
@Suite(.serialized) struct SharedLimitsLoadTests {
    /// A 100 requests/s plan ("limited", burst 0.2 s) shared through Redis, half of it locally when Redis is away.
    /// A new "limited" key that has answered once and holds a lease from Redis, and the request body to send.
    static func leasedKey(_ gateway: GatewayHarness) async throws -> (key: String, body: String) {
        let key = try await gateway.key(plan: "limited")
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        #expect(try await gateway.post(body, key: key).status == 200)
        #expect(await eventually { try await gateway.metric(#"tollgate_redis_leases_total{result="ok"}"#) >= 1 })
        return (key, body)
    }

    static func yaml(mode: String, port: Int) -> String {
        GatewayHarness.oneNodeYAML + """
              limited:
                cu_per_second: 1000000
                requests_per_second: 100
                burst_seconds: 0.2
            redis:
              mode: \(mode)
              addresses: ["127.0.0.1:\(port)"]
              master_name: tollgate
              local_share: 0.5
              timeout_ms: 300
            """
    }

    @Test func redisKilledMidLoadMeansLocalLimitsAndNo5xxThenSharedLimitsResume() async throws {
        let redis = try await RedisServers.make(ports: 1)
        try await redis.start()
        defer { redis.destroy() }
        let node = try await FakeNode.start()
        let yaml = Self.yaml(mode: "standalone", port: redis.base)
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        do {
            let (key, body) = try await Self.leasedKey(gateway)
            let states = StateLog()
            let result = try await LoadDriver.run(
                ports: [gateway.port], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 4, duration: .seconds(10),
                during: {
                    try await Task.sleep(for: .seconds(2))
                    try await redis.kill(0)
                    // The fallback shows in metrics and /readyz (ready, but degraded).
                    let fellBack = await eventually(timeout: .seconds(2)) { try await gateway.metric("tollgate_limits_fallback") == 1 }
                    let ready = try await TestHTTPClient.connect(port: gateway.port).request(method: "GET", path: "/readyz", headers: [])
                    states.record("fallback=\(fellBack) readyz=\(ready.status) \(ready.body)")
                    try await Task.sleep(until: .now + .seconds(3))
                    try await redis.start()
                    let resumed = await eventually(timeout: .seconds(3)) { try await gateway.metric("tollgate_limits_fallback") == 0 }
                    states.record("resumed=\(resumed)")
                })
            print("redis down under load: statuses \(result.statuses), per second \(result.okPerSecond), \(states.lines)")
            #expect(result.serverErrors == 0 && result.failures == 0)
            #expect(result.count(429) > 0)
            #expect(states.lines.first?.hasPrefix("fallback=true readyz=200") == true)
            #expect(states.lines.first?.contains("redis unreachable") == true)
            #expect(states.lines.last == "resumed=true")
            // Seconds 0–1: shared (100/s, plus the 20-request burst); 3–5: local at half the
            // plan (50/s, starting without a burst); Redis back at about 5–6, then a settle of
            // 1 s still local while other replicas would charge their part; 8–9: shared again
            // (the outage's admissions are charged from its start, so the bucket has not
            // refilled over it).
            let seconds = result.okPerSecond
            let shared = Double(seconds[0] + seconds[1]) / 2
            let local = Double(seconds[3] + seconds[4] + seconds[5]) / 3
            let back = Double(seconds[8] + seconds[9]) / 2
            #expect((85...125).contains(shared))
            #expect((40...60).contains(local))
            #expect((85...125).contains(back))
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }
}

extension SharedLimitsLoadTests {
    /// Drives a "limited" key for `seconds` while `failover` (after 1 s) takes the Redis master
    /// away; expects no 5xx, leases succeeding again after it, and 80–125/s in the last two seconds.
    func failoverUnderLoad(_ gateway: GatewayHarness, seconds: Int, _ failover: @escaping @Sendable () async throws -> Void) async throws {
        let (key, body) = try await Self.leasedKey(gateway)
        let states = StateLog()
        let result = try await LoadDriver.run(
            ports: [gateway.port], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 4, duration: .seconds(Int64(seconds)),
            during: {
                try await Task.sleep(for: .seconds(1))
                let before = try await gateway.metric(#"tollgate_redis_leases_total{result="ok"}"#)
                try await failover()
                let resumed = await eventually(timeout: .seconds(6)) {
                    let fallback = try await gateway.metric("tollgate_limits_fallback")
                    let leases = try await gateway.metric(#"tollgate_redis_leases_total{result="ok"}"#)
                    return fallback == 0 && leases > before + 2
                }
                states.record("resumed=\(resumed)")
            })
        print("failover under load: statuses \(result.statuses), per second \(result.okPerSecond), \(states.lines)")
        #expect(result.serverErrors == 0 && result.failures == 0)
        #expect(states.lines == ["resumed=true"])
        // Once the new master is known, the shared limit holds at 100/s again.
        let last = Double(result.okPerSecond[seconds - 2] + result.okPerSecond[seconds - 1]) / 2
        #expect((80...125).contains(last))
    }

    @Test func aClusterMasterDiesUnderLoadAndLimitsFollowThePromotedReplica() async throws {
        let redis = try await RedisServers.make(ports: 6)
        try await redis.startCluster()
        defer { redis.destroy() }
        let node = try await FakeNode.start()
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(mode: "cluster", port: redis.base))
        let probe = RedisClient(configuration: .init(mode: .cluster, addresses: [redis.node(0)]))
        do {
            try await failoverUnderLoad(gateway, seconds: 8) {
                // The key's limits live in the slot of its hash tag (key id 1); kill that slot's master.
                let slotKey = "tg:{k1}:rl"
                #expect(try await probe.execute(["EXISTS", .string(slotKey)], key: slotKey).int == 1)
                let victim = try #require(probe.slotMap.node(forSlot: HashSlot.of(slotKey)))
                try await redis.kill(victim.port - redis.base)
                // Its replica is promoted (node timeout 1 s).
                #expect(await eventually(timeout: .seconds(6)) {
                    (try? await probe.execute(["EXISTS", .string(slotKey)], key: slotKey)) != nil
                        && probe.slotMap.node(forSlot: HashSlot.of(slotKey)) != victim
                })
            }
        } catch {
            Issue.record(error)
        }
        await probe.close()
        try await gateway.stop()
        await node.stop()
    }

    @Test func aSentinelFailoverUnderLoadMeansNo5xxAndLimitsOnTheNewMaster() async throws {
        let redis = try await RedisServers.make(ports: 3)
        try await redis.start(0)
        try await redis.start(1, replicaOf: 0)
        try await redis.startSentinel(2, watching: 0, name: "tollgate")
        defer { redis.destroy() }
        let node = try await FakeNode.start()
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(mode: "sentinel", port: redis.base + 2))
        do {
            // Sentinel promotes the replica (down-after 1 s).
            try await failoverUnderLoad(gateway, seconds: 9) { try await redis.kill(0) }
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }
}

final class StateLog: Sendable {
    private let storage = Mutex<[String]>([])
    func record(_ line: String) { storage.withLock { $0.append(line) } }
    var lines: [String] { storage.withLock { $0 } }
}
