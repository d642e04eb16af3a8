import Foundation
import Testing
import TollgateTestSupport

/// The distributed shape on loopback, as the deployment issue's drills want it: three
/// `tollgate serve` processes behind HAProxy (deploy/haproxy/haproxy.cfg as it ships), PostgreSQL
/// under Patroni (deploy/patroni/patroni.yml), Redis with a replica and three Sentinels, two
/// ClickHouse servers, three fake nodes.
final class FullStack: @unchecked Sendable {
    let directory: String
    let nodes: [FakeNode]
    let clickhouse: [ClickHouseServer]
    let redis: RedisServers
    let patroniBase: Int
    let replicaBase: Int
    let balancer: Int
    private(set) var replicas: [TollgateProcess?]

    static let patroni = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/patroni")
    static let haproxy = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/haproxy")

    private init(
        directory: String, nodes: [FakeNode], clickhouse: [ClickHouseServer], redis: RedisServers, patroniBase: Int, replicaBase: Int, balancer: Int
    ) {
        self.directory = directory
        self.nodes = nodes
        self.clickhouse = clickhouse
        self.redis = redis
        self.patroniBase = patroniBase
        self.replicaBase = replicaBase
        self.balancer = balancer
        replicas = [nil, nil, nil]
    }

    static func start() async throws -> FullStack {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stack-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let nodes = [try await FakeNode.start(), try await FakeNode.start(), try await FakeNode.start()]
        let clickhouse = [try await ClickHouseServer.start(), try await ClickHouseServer.start()]
        let redis = try await RedisServers.make(ports: 5)
        try await redis.start(0)
        try await redis.start(1, replicaOf: 0)
        for sentinel in 2...4 { try await redis.startSentinel(sentinel, watching: 0, name: "tollgate") }
        let patroniBase = try await ClickHouseServer.freePortRun(6, range: 18_000...19_900)
        try await ClickHouseServer.script([patroni, "start", directory + "/patroni", String(patroniBase)])
        let replicaBase = try await ClickHouseServer.freePortRun(8, range: 22_000...23_900)
        let stack = FullStack(
            directory: directory, nodes: nodes, clickhouse: clickhouse, redis: redis, patroniBase: patroniBase, replicaBase: replicaBase,
            balancer: replicaBase + 6)
        try "tollgate-test".write(toFile: directory + "/pg.password", atomically: true, encoding: .utf8)
        for index in 0..<3 { try stack.config(index).write(toFile: stack.configPath(index), atomically: true, encoding: .utf8) }
        // Schemas: the key store once, telemetry on each ClickHouse.
        for (index, server) in clickhouse.enumerated() {
            let single = stack.config(0).replacingOccurrences(of: clickhouse.map(\.url).joined(separator: ", "), with: server.url)
            let path = directory + "/migrate-ch\(index).yaml"
            try single.write(toFile: path, atomically: true, encoding: .utf8)
            let migrated = try TollgateProcess.command(["telemetry", "migrate", "--config", path], in: directory)
            guard migrated.status == 0 else { throw ProcessFailure(message: "telemetry migrate: \(migrated.output)") }
        }
        let migrated = try TollgateProcess.command(["migrate", "--config", stack.configPath(0)], in: directory)
        guard migrated.status == 0 else { throw ProcessFailure(message: "migrate: \(migrated.output)") }
        for index in 0..<3 { try await stack.startReplica(index) }
        try await ClickHouseServer.script([
            haproxy, "shipped", directory + "/haproxy", String(stack.balancer), String(stack.balancer + 1),
            "127.0.0.1:\(replicaBase)", "127.0.0.1:\(replicaBase + 1)", "127.0.0.1:\(replicaBase + 2)",
        ])
        return stack
    }

    func configPath(_ index: Int) -> String { directory + "/replica\(index).yaml" }

    func config(_ index: Int) -> String {
        """
        server:
          listen: 127.0.0.1:\(replicaBase + index)
          metrics_listen: 127.0.0.1:\(replicaBase + 3 + index)
          threads: 1
          log_level: warning
          drain_timeout_ms: 5000
          auth_cache: {positive_ttl_ms: 1000}
          quota_flush_interval_ms: 500
        store:
          max_stale_ms: 60000
          postgres:
            hosts: ["127.0.0.1:\(patroniBase + 2)", "127.0.0.1:\(patroniBase + 4)"]
            database: tollgate
            user: tollgate
            password_file: \(directory)/pg.password
            query_timeout_ms: 500
            connect_timeout_ms: 300
        redis:
          mode: sentinel
          master_name: tollgate
          addresses: ["127.0.0.1:\(redis.base + 2)", "127.0.0.1:\(redis.base + 3)", "127.0.0.1:\(redis.base + 4)"]
          local_share: 0.34
        telemetry:
          clickhouse:
            urls: [\(clickhouse.map(\.url).joined(separator: ", "))]
            database: tollgate
            table: requests
            flush_interval_ms: 200
            max_attempts: 1
          spool_dir: \(directory)/spool-\(index)
        networks:
          ethereum:
            chain_id: 1
            health_check: {interval_ms: 200}
            attempt_timeout_ms: 1000
            upstreams:
        \(nodes.map { "      - url: \($0.url)" }.joined(separator: "\n"))
        plans:
          big: {cu_per_second: 100000000, requests_per_second: 10000000}
          limited: {cu_per_second: 1000000, requests_per_second: 100, burst_seconds: 1}
        """
    }

    func startReplica(_ index: Int) async throws {
        replicas[index] = try await TollgateProcess.serve(
            config: configPath(index), port: replicaBase + index, metricsPort: replicaBase + 3 + index, directory: directory)
    }

    /// SIGTERM and wait for the exit (the drain and telemetry flush included).
    func stopReplica(_ index: Int) {
        if let replica = replicas[index], !replica.stop() {
            Issue.record("replica \(index) did not exit after SIGTERM: \(replica.log)")
        }
        replicas[index] = nil
    }

    func killReplica(_ index: Int) {
        guard let replica = replicas[index] else { return }
        kill(replica.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(replica.pid, &status, 0)
        replicas[index] = nil
    }

    /// A new key on `plan`, issued as an operator does.
    func key(plan: String = "big") throws -> String {
        let created = try TollgateProcess.command(["keys", "create", "--plan", plan, "--json", "--config", configPath(0)], in: directory)
        guard let key = created.output.split(separator: "\n").compactMap({ String($0).jsonObject?["key"] as? String }).first else {
            throw ProcessFailure(message: "keys create failed: \(created.output)")
        }
        return key
    }

    /// Telemetry rows of one key across both ClickHouse servers: all of them, and distinct request ids.
    func rows(key: String) async throws -> (rows: Int, distinct: Int) {
        var rows = 0
        var ids: [String] = []
        let prefix = String(key.prefix(11))
        for server in clickhouse {
            // Rows and ids from one query: a count taken apart would miss rows that land between the two.
            let list = try await server.query("SELECT request_id FROM tollgate.requests WHERE key_prefix = '\(prefix)'")
            let found = list.split(separator: "\n").map(String.init)
            rows += found.count
            ids += found
        }
        return (rows, Set(ids).count)
    }

    /// The key's compute units this month in PostgreSQL (on the current primary): what every
    /// replica's usage flushes added, each batch once.
    func usage(key: String) async throws -> Int {
        let port = try await patroniPrimary()
        let psql = try #require(ChildProcess.find("psql"))
        let query = try await ChildProcess.run(
            psql, ["-tA", "-h", "127.0.0.1", "-p", String(port), "-U", "tollgate", "-d", "tollgate", "-c",
                   "SELECT coalesce(sum(u.compute_units), 0) FROM usage u JOIN api_keys k ON k.id = u.key_id WHERE k.prefix = '\(key.prefix(11))'"],
            environment: ["PGPASSWORD": PostgresServers.password])
        guard query.status == 0, let value = Int(query.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ProcessFailure(message: "usage query: \(query.output)")
        }
        return value
    }

    func patroniPrimary() async throws -> Int {
        try await ClickHouseServer.script([Self.patroni, "primary", directory + "/patroni"])
        return Int(try String(contentsOfFile: directory + "/patroni/primary.port", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func killPatroniPrimary() async throws {
        let primary = try await patroniPrimary()
        try await ClickHouseServer.script([Self.patroni, "kill", directory + "/patroni", primary == patroniBase + 2 ? "0" : "1"])
    }

    /// Each replica's warnings and errors, every message once with how often and when last:
    /// printed when a drill fails, so a CI log carries what the replicas saw (their logs go
    /// with the stack's folder).
    func logDigest() -> String {
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("serve-") }.sorted()
        return logs.map { name in
            let text = (try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? ""
            var seen: [String: (count: Int, last: Substring)] = [:]
            var order: [String] = []
            for line in text.split(separator: "\n") where line.contains(" warning ") || line.contains(" error ") || line.contains(" critical ") {
                let time = line.prefix { $0 != " " }
                let message = String(line.dropFirst(time.count + 1).prefix(240))
                if seen[message] == nil { order.append(message) }
                seen[message] = ((seen[message]?.count ?? 0) + 1, time)
            }
            let lines = order.sorted { seen[$0]!.last < seen[$1]!.last }.suffix(30).map { "  \(seen[$0]!.count)× last \(seen[$0]!.last): \($0)" }
            return "\(name):\n" + lines.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    func destroy() async {
        for index in 0..<3 { stopReplica(index) }
        try? ClickHouseServer.run([Self.haproxy, "stop", directory + "/haproxy"])
        try? ClickHouseServer.run([Self.patroni, "stop", directory + "/patroni"])
        redis.destroy()
        for server in clickhouse { await server.destroy() }
        for node in nodes { await node.stop() }
        // TOLLGATE_KEEP_STACK=1 keeps the folder (the replicas' logs, serve-PORT.log) to read after a failure.
        if ProcessInfo.processInfo.environment["TOLLGATE_KEEP_STACK"] != nil {
            print("full stack kept in \(directory)")
        } else {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}
