import Foundation
import Testing
import TollgateTestSupport

/// Two regions on loopback, as docs/multi-region.md lays them out: each with two replicas and
/// its own Redis, both on one PostgreSQL. A key spent from both regions at once keeps to its
/// monthly quota globally, every admitted unit reaches PostgreSQL, and a revocation made in one
/// region is refused in the other within a second.
@Suite(.serialized) struct MultiRegionTests {
    /// 10 CU per `eth_blockNumber`: the quota is 6,000 requests, spent in a few seconds here.
    static let quota = 60_000

    @Test func quotaHoldsGloballyAndARevocationCrossesRegionsWithinASecond() async throws {
        let pg = try await PostgresServers.make(ports: 1)
        let redis = try await RedisServers.make(ports: 2)
        let node = try await FakeNode.start()
        let directory = pg.directory + "-regions"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var replicas: [TollgateProcess] = []
        defer {
            for replica in replicas { replica.stop() }
            pg.destroy()
            redis.destroy()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await pg.startPrimary()
        try await redis.start(0)
        try await redis.start(1)
        let passwordFile = try pg.passwordFile()
        let base = try await ClickHouseServer.freePortRun(8, range: 16_000...17_900)
        // Replicas 0 and 1 are region A (Redis 0), 2 and 3 region B (Redis 1).
        var configs: [String] = []
        for index in 0..<4 {
            let path = directory + "/replica\(index).yaml"
            try DistributedReplicaTests.config(
                port: base + index, metricsPort: base + 4 + index, node: node.url, pg: pg,
                redisPort: redis.base + index / 2, passwordFile: passwordFile, quotaFlushMillis: 100, localShare: 0.5,
                plans: "  metered: {cu_per_second: 100000000, requests_per_second: 1000000, monthly_cu: \(Self.quota)}"
            ).write(toFile: path, atomically: true, encoding: .utf8)
            configs.append(path)
        }
        let key = try TollgateProcess.provision(config: configs[0], plan: "metered", in: directory)
        for index in 0..<4 {
            replicas.append(try await TollgateProcess.serve(config: configs[index], port: base + index, metricsPort: base + 4 + index, directory: directory))
        }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#

        // Both regions spend the key as fast as they can until the quota answers 402 everywhere.
        let result = try await LoadDriver.run(
            ports: replicas.map(\.port), path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 2, duration: .seconds(12))
        let admitted = result.count(200) * 10
        let over = Double(admitted - Self.quota) / Double(Self.quota)
        print("two regions: \(result.count(200)) requests admitted (\(admitted) CU) for a quota of \(Self.quota) CU, \(String(format: "%.2f", over * 100)) % over; statuses \(result.statuses); per second \(result.okPerSecond)")
        #expect(result.serverErrors == 0 && result.failures == 0)
        #expect(result.count(402) > 0, "the load did not spend the quota")
        #expect(abs(over) <= 0.01)

        // Every admitted unit reaches PostgreSQL, once (each replica's flushes carry batch ids).
        let prefix = String(key.prefix(11))
        let psql = try #require(ChildProcess.find("psql"))
        var stored = -1
        _ = await eventually(timeout: .seconds(10)) {
            let query = try await ChildProcess.run(
                psql, ["-tA", "-h", "127.0.0.1", "-p", String(pg.port(0)), "-U", "tollgate", "-d", "tollgate", "-c",
                       "SELECT coalesce(sum(u.compute_units), 0) FROM usage u JOIN api_keys k ON k.id = u.key_id WHERE k.prefix = '\(prefix)'"],
                environment: ["PGPASSWORD": PostgresServers.password])
            stored = Int(query.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            return stored == admitted
        }
        #expect(stored == admitted, "PostgreSQL holds \(stored) CU; the regions admitted \(admitted)")

        // A revocation made in region A (its CLI, its Redis channel, PostgreSQL NOTIFY) is refused
        // by region B's replicas, which share no Redis with A, within a second.
        let other = try TollgateProcess.provision(config: configs[0], plan: "metered", in: directory)
        for replica in replicas { #expect(try await replica.post(body, key: other).status == 200) }
        let revoked = ContinuousClock.now
        let revoke = try TollgateProcess.command(["keys", "revoke", String(other.prefix(11)), "--config", configs[0]], in: directory)
        #expect(revoke.status == 0, "\(revoke.output)")
        var refusedBy = Set<Int>()
        while refusedBy.count < 4, ContinuousClock.now - revoked < .seconds(3) {
            for (index, replica) in replicas.enumerated() where !refusedBy.contains(index) {
                if try await replica.post(body, key: other).status == 403 { refusedBy.insert(index) }
            }
        }
        let elapsed = ContinuousClock.now - revoked
        print("revocation in region A reached \(refusedBy.sorted()) in \(elapsed)")
        #expect(refusedBy == [0, 1, 2, 3] && elapsed < .seconds(1))
        await node.stop()
    }
}
