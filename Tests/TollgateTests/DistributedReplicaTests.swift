import Foundation
import Testing
import TollgateTestSupport

/// Three `tollgate serve` processes sharing one PostgreSQL and one Redis, as N replicas behind a
/// load balancer: a key's limit holds for the cluster, and a revocation reaches all of them.
@Suite(.serialized) struct DistributedReplicaTests {
    static let limit = 200

    /// One replica's config: its listeners, the shared PostgreSQL and its Redis, one node, and
    /// `plans` (YAML under `plans:`); `MultiRegionTests` builds its regions with it too.
    static func config(
        port: Int, metricsPort: Int, node: String, pg: PostgresServers, redisPort: Int, passwordFile: String,
        quotaFlushMillis: Int = 500, localShare: Double = 0.34, plans: String? = nil
    ) -> String {
        """
        server:
          listen: 127.0.0.1:\(port)
          metrics_listen: 127.0.0.1:\(metricsPort)
          threads: 1
          log_level: warning
          auth_cache: {positive_ttl_ms: 60000}
          quota_flush_interval_ms: \(quotaFlushMillis)
        store:
          postgres:
            hosts: ["\(pg.address(0))"]
            database: tollgate
            user: tollgate
            password_file: \(passwordFile)
        redis:
          mode: standalone
          addresses: ["127.0.0.1:\(redisPort)"]
          local_share: \(localShare)
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: \(node)
        plans:
        \(plans ?? "  limited: {cu_per_second: 1000000, requests_per_second: \(limit), burst_seconds: 0.1}")
        """
    }

    @Test func aKeysLimitHoldsAcrossThreeReplicasAndARevocationReachesAllWithinASecond() async throws {
        let pg = try await PostgresServers.make(ports: 1)
        let redis = try await RedisServers.make(ports: 1)
        let node = try await FakeNode.start()
        let directory = pg.directory + "-gw"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var replicas: [TollgateProcess] = []
        defer {
            for replica in replicas { replica.stop() }
            pg.destroy()
            redis.destroy()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await pg.startPrimary()
        try await redis.start()
        let passwordFile = try pg.passwordFile()
        let base = try await ClickHouseServer.freePortRun(6, range: 16_000...17_900)
        var configs: [String] = []
        for index in 0..<3 {
            let path = directory + "/replica\(index).yaml"
            try Self.config(port: base + index, metricsPort: base + 3 + index, node: node.url, pg: pg, redisPort: redis.base, passwordFile: passwordFile)
                .write(toFile: path, atomically: true, encoding: .utf8)
            configs.append(path)
        }
        // Provisioning as an operator would: migrate, then a key, through the CLI.
        let key = try TollgateProcess.provision(config: configs[0], plan: "limited", in: directory)
        let listed = try TollgateProcess.command(["keys", "list", "--config", configs[2]], in: directory)
        let listsKey = listed.output.range(of: String(key.prefix(11)) + " ") != nil && listed.output.range(of: key) == nil
        #expect(listed.status == 0 && listsKey, "\(listed.output)")
        for index in 0..<3 {
            replicas.append(try await TollgateProcess.serve(config: configs[index], port: base + index, metricsPort: base + 3 + index, directory: directory))
        }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        // Warm every replica's key cache, then wait out the burst those requests took.
        for replica in replicas { #expect(try await replica.post(body, key: key).status == 200) }
        try await Task.sleep(for: .milliseconds(300))

        let seconds = 10
        let result = try await LoadDriver.run(
            ports: replicas.map(\.port), path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 6, duration: .seconds(Int64(seconds)))
        let perSecond = Double(result.count(200)) / Double(seconds)
        print("distributed limit: \(result.count(200)) admitted of \(result.total) in \(seconds) s = \(perSecond)/s for a limit of \(Self.limit)/s; statuses \(result.statuses); per second \(result.okPerSecond)")
        #expect(result.total > Self.limit * seconds * 2, "the load did not press the limit")
        #expect(result.serverErrors == 0 && result.failures == 0)
        #expect(perSecond <= Double(Self.limit) * 1.05)
        #expect(perSecond >= Double(Self.limit) * 0.9)

        // Revoke through one replica's CLI: every replica refuses within a second.
        let prefix = String(key.prefix(11))
        let revoked = ContinuousClock.now
        let revoke = try TollgateProcess.command(["keys", "revoke", prefix, "--config", configs[1]], in: directory)
        let announced = revoke.output.range(of: "every replica told") != nil
        #expect(revoke.status == 0 && announced, "\(revoke.output)")
        var refusedBy = Set<Int>()
        while refusedBy.count < 3, ContinuousClock.now - revoked < .seconds(2) {
            for (index, replica) in replicas.enumerated() where !refusedBy.contains(index) {
                if try await replica.post(body, key: key).status == 403 { refusedBy.insert(index) }
            }
        }
        let elapsed = ContinuousClock.now - revoked
        print("revocation reached \(refusedBy.count) replicas in \(elapsed)")
        #expect(refusedBy.count == 3 && elapsed < .seconds(1))
        await node.stop()
    }
}
