import Foundation
import Synchronization
import Testing
import TollgateTestSupport

/// Two `tollgate serve` replicas behind a real HAProxy that checks `/readyz` with a 1 s timeout
/// (Kubernetes' default `timeoutSeconds`), under a steady load of a known key, while PostgreSQL,
/// then Redis, then ClickHouse are killed. Readiness is answered from state the replicas hold,
/// so no check times out, no replica leaves rotation and no request fails.
@Suite(.serialized) struct BalancerOutageTests {
    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/haproxy")

    static func config(port: Int, metricsPort: Int, node: String, pg: PostgresServers, redisPort: Int, clickhouse: String, directory: String, passwordFile: String) -> String {
        """
        server:
          listen: 127.0.0.1:\(port)
          metrics_listen: 127.0.0.1:\(metricsPort)
          threads: 1
          log_level: warning
          auth_cache: {positive_ttl_ms: 300}
          quota_flush_interval_ms: 500
        store:
          max_stale_ms: 60000
          postgres:
            hosts: ["\(pg.address(0))"]
            database: tollgate
            user: tollgate
            password_file: \(passwordFile)
            query_timeout_ms: 3000
            connect_timeout_ms: 3000
        redis:
          mode: standalone
          addresses: ["127.0.0.1:\(redisPort)"]
        telemetry:
          clickhouse:
            urls: [\(clickhouse)]
            database: tollgate
            table: requests
            flush_interval_ms: 200
          spool_dir: \(directory)/spool-\(port)
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: \(node)
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000
        """
    }

    /// One `/readyz` answer as a balancer sees it.
    struct Check: Sendable {
        var status: Int
        var body: String
        var latency: Duration
    }

    @Test func killingPostgresRedisAndClickHouseUnderLoadFailsNoRequestThroughTheBalancer() async throws {
        let pg = try await PostgresServers.make(ports: 1)
        let redis = try await RedisServers.make(ports: 1)
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let directory = pg.directory + "-lb"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var replicas: [TollgateProcess] = []
        defer {
            for replica in replicas { replica.stop() }
            try? ClickHouseServer.run([Self.script, "stop", directory])
            pg.destroy()
            redis.destroy()
            try? FileManager.default.removeItem(atPath: directory)
        }
        try await pg.startPrimary()
        try await redis.start()
        let passwordFile = try pg.passwordFile()
        // Two replicas (listener and metrics each), HAProxy and its stats page.
        let base = try await ClickHouseServer.freePortRun(6, range: 18_000...19_900)
        var configs: [String] = []
        for index in 0..<2 {
            let path = directory + "/replica\(index).yaml"
            try Self.config(
                port: base + index, metricsPort: base + 2 + index, node: node.url, pg: pg, redisPort: redis.base, clickhouse: clickhouse.url,
                directory: directory, passwordFile: passwordFile
            ).write(toFile: path, atomically: true, encoding: .utf8)
            configs.append(path)
        }
        let balancer = base + 4
        let stats = base + 5
        do {
            let key = try TollgateProcess.provision(config: configs[0], plan: "big", in: directory)
            #expect(try TollgateProcess.command(["telemetry", "migrate", "--config", configs[0]], in: directory).status == 0)
            for index in 0..<2 {
                replicas.append(try await TollgateProcess.serve(config: configs[index], port: base + index, metricsPort: base + 2 + index, directory: directory))
            }
            try await ClickHouseServer.script([Self.script, "start", directory, String(balancer), String(stats), String(base), String(base + 1)])
            #expect(await eventually {
                let servers = try await Self.servers(in: directory)
                return servers.count == 2 && servers.allSatisfy { $0.status == "UP" }
            })
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
            // The key is known to both replicas before the outages start.
            for replica in replicas { #expect(try await replica.post(body, key: key).status == 200) }

            let checks = Phases()
            let running = replicas
            let result = try await LoadDriver.run(
                ports: [balancer], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 4, duration: .seconds(13),
                during: {
                    try await Task.sleep(for: .seconds(1))
                    try await pg.stop(0, kill: true)
                    let down = try await Self.sampleReadiness(running, for: .seconds(3))
                    checks.set("postgres", down)
                    try await redis.kill(0)
                    let redisDown = try await Self.sampleReadiness(running, for: .seconds(3))
                    checks.set("redis", redisDown)
                    try await clickhouse.stop()
                    let clickhouseDown = try await Self.sampleReadiness(running, for: .seconds(3))
                    checks.set("clickhouse", clickhouseDown)
                })
            let servers = try await Self.servers(in: directory)
            print("balancer outage: \(result.total) requests through HAProxy, statuses \(result.statuses), \(result.failures) failures, slowest \(result.slowest); HAProxy servers \(servers)")
            #expect(result.total > 1_000)
            #expect(result.count(200) == result.total && result.failures == 0, "\(result.statuses), \(result.failures) failures")
            // No replica was ever taken out of rotation: no check failed twice in a row.
            #expect(servers.count == 2 && servers.allSatisfy { $0.status == "UP" && $0.downTransitions == 0 }, "\(servers)")
            // A known key never waited on the dead store (its 3 s timeouts).
            #expect(result.slowest < .seconds(1), "slowest request \(result.slowest)")
            let sampled = checks.all
            for (backend, reason) in [("postgres", "keystore unreachable"), ("redis", "redis unreachable"), ("clickhouse", "clickhouse unreachable")] {
                let phase = sampled[backend] ?? []
                let latencies = phase.map(\.latency).sorted()
                let p50 = latencies.isEmpty ? .zero : latencies[latencies.count / 2]
                print("/readyz while \(backend) is down: \(phase.count) checks, p50 \(p50), max \(latencies.last ?? .zero), statuses \(Set(phase.map(\.status)))")
                #expect(!phase.isEmpty && phase.allSatisfy { $0.status == 200 })
                // Far inside the balancer's 1 s: the answer comes from memory.
                #expect((latencies.last ?? .seconds(9)) < .milliseconds(250), "\(backend): \(latencies)")
                #expect(phase.contains { $0.body.contains(reason) }, "\(backend): \(phase.last?.body ?? "")")
            }
        } catch {
            Issue.record(error)
        }
        await clickhouse.destroy()
        await node.stop()
    }

    /// Asks every replica's `/readyz` every 100 ms for `duration`, as a balancer's checks would.
    static func sampleReadiness(_ replicas: [TollgateProcess], for duration: Duration) async throws -> [Check] {
        var checks: [Check] = []
        let deadline = ContinuousClock.now + duration
        while ContinuousClock.now < deadline {
            for replica in replicas {
                let client = try await TestHTTPClient.connect(port: replica.port)
                let start = ContinuousClock.now
                let response = try await client.request(method: "GET", path: "/readyz", headers: [])
                checks.append(Check(status: response.status, body: response.body, latency: ContinuousClock.now - start))
                await client.close()
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        return checks
    }

    final class Phases: Sendable {
        private let storage = Mutex<[String: [Check]]>([:])
        func set(_ phase: String, _ checks: [Check]) { storage.withLock { $0[phase] = checks } }
        var all: [String: [Check]] { storage.withLock { $0 } }
    }

    struct Server: Sendable, CustomStringConvertible {
        var name: String
        var status: String
        /// How often HAProxy took the server out (UP to DOWN).
        var downTransitions: Int
        var description: String { "\(name) \(status) down×\(downTransitions)" }
    }

    /// The backend's servers from HAProxy's CSV statistics.
    static func servers(in directory: String) async throws -> [Server] {
        try await ClickHouseServer.script([script, "stats", directory])
        let text = try String(contentsOfFile: directory + "/stats.csv", encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init),
            let proxy = header.firstIndex(of: "pxname"), let name = header.firstIndex(of: "svname"),
            let status = header.firstIndex(of: "status"), let down = header.firstIndex(of: "chkdown")
        else { throw ServerScriptFailed(message: "no HAProxy statistics: \(text.prefix(200))") }
        return lines.dropFirst().compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count > down, fields[proxy] == "replicas", fields[name].hasPrefix("r") else { return nil }
            return Server(name: fields[name], status: fields[status], downTransitions: Int(fields[down]) ?? -1)
        }
    }
}
