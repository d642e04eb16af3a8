import Foundation
import Testing
import TollgateApp
@testable import TollgateClickHouse
import TollgateCore
import TollgateTestSupport

/// Telemetry against a real ClickHouse server (Debian's `clickhouse-server`), started per test.
@Suite(.serialized) struct ClickHouseTelemetryTests {
    static func yaml(_ clickhouse: ClickHouseServer, spoolMaxBytes: Int = 1 << 26, deadURL: Bool = false) -> String {
        GatewayHarness.oneNodeYAML + """
        telemetry:
          clickhouse:
            urls: [\(deadURL ? "http://127.0.0.1:1, " : "")\(clickhouse.url)]
            database: tollgate
            table: requests
            flush_interval_ms: 100
            batch_rows: 50
            max_attempts: 2
            backoff_ms: 50
            backoff_max_ms: 200
            timeout_ms: 10000
          spool_dir: {DIR}/spool
          spool_max_bytes: \(spoolMaxBytes)
          spool_segment_bytes: 4096
        """
    }

    /// Sends `count` requests; returns the request IDs the gateway answered with.
    static func send(_ count: Int, through gateway: GatewayHarness, key: String) async throws -> [String] {
        var ids: [String] = []
        for index in 0..<count {
            let response = try await gateway.post(#"{"jsonrpc":"2.0","id":\#(index),"method":"eth_blockNumber"}"#, key: key)
            #expect(response.status == 200)
            ids.append(try #require(response.header("X-Request-ID")))
        }
        return ids
    }

    static func storedIDs(_ clickhouse: ClickHouseServer) async throws -> [String] {
        try await clickhouse.query("SELECT request_id FROM tollgate.requests ORDER BY request_id FORMAT TabSeparated")
            .split(separator: "\n").map(String.init)
    }

    static func migrate(_ clickhouse: ClickHouseServer) async throws {
        var config = TelemetryConfig()
        config.clickhouse = ClickHouseConfig(urls: [clickhouse.url])
        let version = try await TelemetryAdmin.migrate(config)
        #expect(!version.isEmpty)
        // Twice is fine: every statement is IF NOT EXISTS.
        _ = try await TelemetryAdmin.migrate(config)
    }

    /// The admin API's usage view reads the same rollup, day by day, and says 503 (not 500,
    /// not an empty list) while ClickHouse is away.
    @Test func theAdminAPIShowsAKeysDaysFromTheRollup() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let (admin, node) = try await AdminAPITests.start(base: Self.yaml(clickhouse))
        do {
            try await Self.migrate(clickhouse)
            let key = try await admin.harness.key()
            _ = try await Self.send(5, through: admin.harness, key: key)
            let path = "/v1/keys/\(key.prefix(11))/usage"
            var body: [String: Any] = [:]
            #expect(await eventually {
                body = try await admin.call("GET", path, token: AdminAPITests.reader).body.json as? [String: Any] ?? [:]
                return (body["days"] as? [[String: Any]])?.compactMap { $0["requests"] as? Int }.reduce(0, +) == 5
            })
            let day = try #require((body["days"] as? [[String: Any]])?.first)
            #expect(day["network"] as? String == "ethereum" && day["compute_units"] as? Int == 50 && day["errors"] as? Int == 0)
            #expect(body["compute_units"] as? Int == 50)

            // By method and by hour, from the same rows.
            for _ in 0..<2 {
                #expect(try await admin.harness.post(#"{"jsonrpc":"2.0","id":9,"method":"eth_chainId"}"#, key: key).status == 200)
            }
            var methods: [[String: Any]] = []
            #expect(await eventually {
                let json = try await admin.call("GET", path + "?by=method", token: AdminAPITests.reader).body.json as? [String: Any]
                methods = json?["rows"] as? [[String: Any]] ?? []
                return methods.compactMap { $0["requests"] as? Int }.reduce(0, +) == 7
            })
            let counts = Dictionary(uniqueKeysWithValues: methods.compactMap { row in (row["method"] as? String).map { ($0, row["requests"] as? Int ?? 0) } })
            #expect(counts == ["eth_blockNumber": 5, "eth_chainId": 2], "\(methods)")
            let hours = try #require((try await admin.call("GET", path + "?by=hour", token: AdminAPITests.reader).body.json as? [String: Any])?["rows"] as? [[String: Any]])
            #expect(hours.allSatisfy { ($0["period"] as? String)?.hasSuffix(":00") == true && $0["method"] == nil })
            #expect(hours.compactMap { $0["requests"] as? Int }.reduce(0, +) == 7)

            // An account's usage sums its keys: this one, and another with 3 requests.
            let (account, _) = try await AccountAdminTests.account(admin, name: "Acme", keys: 0)
            #expect(try await admin.call("PATCH", path.replacingOccurrences(of: "/usage", with: ""), body: #"{"account_id":\#(account)}"#).status == 200)
            let second = try await admin.call("POST", "/v1/keys", body: #"{"plan":"big","account_id":\#(account)}"#)
            let secondKey = try #require((second.body.json as? [String: Any])?["key"] as? String)
            _ = try await Self.send(3, through: admin.harness, key: secondKey)
            var accountBody: [String: Any] = [:]
            #expect(await eventually {
                accountBody = try await admin.call("GET", "/v1/accounts/\(account)/usage?by=method", token: AdminAPITests.reader).body.json as? [String: Any] ?? [:]
                let rows = accountBody["rows"] as? [[String: Any]] ?? []
                return rows.filter { $0["method"] as? String == "eth_blockNumber" }.compactMap { $0["requests"] as? Int }.reduce(0, +) == 8
            }, "\(accountBody)")
            #expect((accountBody["keys"] as? [[String: Any]])?.count == 2)
            let first = try #require((try await admin.call("GET", path, token: AdminAPITests.reader).body.json as? [String: Any])?["compute_units"] as? Int)
            #expect(await eventually {
                let json = try await admin.call("GET", "/v1/accounts/\(account)/usage", token: AdminAPITests.reader).body.json as? [String: Any]
                return json?["compute_units"] as? Int == first + 30
            })
            try await clickhouse.stop()
            let away = try await admin.call("GET", path, token: AdminAPITests.reader)
            #expect(away.status == 503 && away.body.contains("telemetry store"), "\(away.body)")
            #expect(try await admin.call("GET", "/v1/accounts/\(account)/usage", token: AdminAPITests.reader).status == 503)
        } catch {
            Issue.record(error)
        }
        try await admin.harness.stop()
        await node.stop()
        await clickhouse.destroy()
    }

    @Test func everyRequestIsStoredExactlyOnceAndRolledUpForUsage() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse))
        do {
            try await Self.migrate(clickhouse)
            let key = try await gateway.key()
            let ids = try await Self.send(40, through: gateway, key: key)
            #expect(await eventually { try await Self.storedIDs(clickhouse).count >= 40 })
            #expect(try await Self.storedIDs(clickhouse) == ids.sorted())
            let row = try await clickhouse.query(
                "SELECT network, method, http_status, compute_units, key_prefix, upstream != '' FROM tollgate.requests LIMIT 1")
            #expect(row == "ethereum\teth_blockNumber\t200\t10\t\(key.prefix(11))\t1")
            // The hourly rollup feeds `tollgate usage`.
            // The rollup's part commits just after the table's.
            #expect(await eventually {
                try await TelemetryAdmin.usage(gateway.config.telemetry, keyPrefix: String(key.prefix(11)), from: nil, to: nil)
                    .map(\.requests).reduce(0, +) == 40
            })
            let usage = try await TelemetryAdmin.usage(gateway.config.telemetry, keyPrefix: String(key.prefix(11)), from: nil, to: nil)
            #expect(usage.map(\.requests).reduce(0, +) == 40)
            #expect(usage.map(\.computeUnits).reduce(0, +) == 400)
            #expect(usage.first?.network == "ethereum")
            // Sent from memory, or (if an insert was slow on a busy machine) spooled and replayed.
            #expect(await eventually {
                let written = try await gateway.metric(#"tollgate_telemetry_events_total{outcome="written"}"#)
                let replayed = try await gateway.metric(#"tollgate_telemetry_events_total{outcome="replayed"}"#)
                return written + replayed == 40
            })
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
        await clickhouse.destroy()
    }

    /// `deploy/clickhouse/cluster.sql` on a one-shard cluster: ZooKeeper is not here, so the
    /// Replicated engines become their plain forms and ON CLUSTER is dropped; the Distributed
    /// tables, the rollup and the gateway's INSERT are exercised as written.
    @Test func theClusterSchemaCarriesRowsThroughDistributedTables() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var sql = try String(contentsOf: root.appendingPathComponent("deploy/clickhouse/cluster.sql"), encoding: .utf8)
        sql = sql.split(separator: "\n").filter { !$0.hasPrefix("--") }.joined(separator: "\n")
            .replacingOccurrences(of: " ON CLUSTER tollgate_cluster", with: "")
        sql = sql.replacing(try Regex(#"ReplicatedMergeTree\('[^']*', '[^']*'\)"#), with: "MergeTree")
        sql = sql.replacing(try Regex(#"ReplicatedSummingMergeTree\('[^']*', '[^']*'\)"#), with: "SummingMergeTree")
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse))
        do {
            for statement in sql.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                _ = try await clickhouse.query(statement)
            }
            let key = try await gateway.key()
            let ids = try await Self.send(20, through: gateway, key: key)
            #expect(await eventually { try await Self.storedIDs(clickhouse).count >= 20 })
            #expect(try await Self.storedIDs(clickhouse) == ids.sorted())
            #expect(await eventually {
                try await TelemetryAdmin.usage(gateway.config.telemetry, keyPrefix: String(key.prefix(11)), from: nil, to: nil)
                    .map(\.requests).reduce(0, +) == 20
            })
            // The method rollup, through its Distributed table.
            #expect(await eventually {
                try await TelemetryAdmin.usage(gateway.config.telemetry, keyPrefixes: [String(key.prefix(11))], from: nil, to: nil, by: .method)
                    .map { "\($0.method ?? "-") \($0.requests)" } == ["eth_blockNumber 20"]
            })
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
        await clickhouse.destroy()
    }

    /// Credentials come from a file (or the environment), never the config file.
    @Test func credentialsFromAPasswordFileAreUsedAndAWrongOneIsAClearError() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            func config(_ password: String) throws -> TelemetryConfig {
                try password.write(toFile: directory + "/ch.password", atomically: true, encoding: .utf8)
                return try ConfigReader.parse(yaml: """
                    networks:
                      ethereum:
                        chain_id: 1
                        upstreams:
                          - url: http://127.0.0.1:1
                    telemetry:
                      clickhouse:
                        urls: [\(clickhouse.url)]
                        user: tollgate
                        password_file: \(directory)/ch.password
                    """).telemetry
            }
            _ = try await TelemetryAdmin.migrate(config("tollgate-test\n"))
            #expect(try await clickhouse.query("EXISTS TABLE tollgate.requests") == "1")
            do {
                _ = try await TelemetryAdmin.migrate(config("pw-XYZ-123"))
                Issue.record("a wrong password was accepted")
            } catch let error as ClickHouseError {
                #expect("\(error)".contains("Wrong password for user tollgate"))
                #expect(!"\(error)".contains("pw-XYZ-123"))
            }
        } catch {
            Issue.record(error)
        }
        await clickhouse.destroy()
    }

    /// A rotated password file applies to the next request of the same client: no restart.
    @Test func thePasswordFileIsReadAgainForEveryRequest() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ch-\(UUID().uuidString).password").path
        try "not-the-password\n".write(toFile: file, atomically: true, encoding: .utf8)
        let client = ClickHouseClient(urls: [clickhouse.url], user: "tollgate", password: "stale", passwordFile: file)
        do {
            _ = try await client.execute("SELECT 1")
            Issue.record("a wrong password was accepted")
        } catch let error as ClickHouseError {
            #expect("\(error)".contains("Wrong password for user tollgate"))
        }
        try "tollgate-test\n".write(toFile: file, atomically: true, encoding: .utf8)
        var answer = try await client.execute("SELECT 1")
        #expect(answer.readString(length: answer.readableBytes)?.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        await client.shutdown()
        try? FileManager.default.removeItem(atPath: file)
        await clickhouse.destroy()
    }

    @Test func aDeadNodeInTheURLListFailsOverToTheNext() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse, deadURL: true))
        do {
            try await Self.migrate(clickhouse)
            let key = try await gateway.key()
            var ids: [String] = []
            // Several batches, so round-robin starts some of them on the dead node.
            for _ in 0..<4 {
                ids += try await Self.send(60, through: gateway, key: key)
            }
            #expect(await eventually { try await Self.storedIDs(clickhouse).count >= 240 })
            #expect(try await Self.storedIDs(clickhouse) == ids.sorted())
            // Every INSERT found the live node: none failed as a whole.
            #expect(try await gateway.metric("tollgate_telemetry_insert_failures_total") == 0)
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
        await clickhouse.destroy()
    }

    /// Also with a dead node first in the URL list: the spooled batches never reached it, so
    /// its silence must not hold them back (it did: every node was asked before a replay).
    @Test(arguments: [false, true])
    func rowsSentWhileClickHouseIsDownAreSpooledAndReplayedOnce(deadNodeListed: Bool) async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse, deadURL: deadNodeListed))
        do {
            try await Self.migrate(clickhouse)
            let key = try await gateway.key()
            var ids = try await Self.send(30, through: gateway, key: key)
            #expect(await eventually { try await Self.storedIDs(clickhouse).count == 30 })
            try await clickhouse.stop()
            ids += try await Self.send(45, through: gateway, key: key)
            // At least the 45 (a batch of the first 30 whose answer the kill cut off is spooled too).
            #expect(await eventually { try await gateway.metric(#"tollgate_telemetry_events_total{outcome="spooled"}"#) >= 45 })
            #expect(try await gateway.metric("tollgate_telemetry_spool_bytes") > 0)
            try await clickhouse.start()
            #expect(await eventually { try await Self.storedIDs(clickhouse).count >= 75 })
            // Each row exactly once, including any batch that landed just before the kill.
            let stored = try await Self.storedIDs(clickhouse)
            #expect(stored == ids.sorted(), "missing \(Set(ids).subtracting(stored).count), stored \(stored.count), unique \(Set(stored).count)")
            // Counted once ClickHouse's answer is back, just after the rows are visible.
            #expect(await eventually {
                let spooled = try await gateway.metric(#"tollgate_telemetry_events_total{outcome="spooled"}"#)
                return try await gateway.metric(#"tollgate_telemetry_events_total{outcome="replayed"}"#) == spooled
            })
            #expect(await eventually { try await gateway.metric("tollgate_telemetry_spool_bytes") == 0 })
            #expect(try await gateway.metric(#"tollgate_telemetry_events_total{outcome="dropped"}"#) == 0)
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
        await clickhouse.destroy()
    }

    @Test func spooledRowsSurviveAGatewayRestart() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        do {
            try await Self.migrate(clickhouse)
            try await clickhouse.stop()
            let first = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse), directory: directory)
            let key = try await first.key()
            let ids = try await Self.send(25, through: first, key: key)
            // Graceful shutdown while ClickHouse is down: what is in memory goes to the spool.
            try await first.stop()
            let spooled = try FileManager.default.contentsOfDirectory(atPath: directory + "/spool").filter { $0.hasSuffix(".seg") }
            #expect(!spooled.isEmpty)
            try await clickhouse.start()
            let second = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse), directory: directory)
            #expect(await eventually { try await Self.storedIDs(clickhouse).count >= 25 })
            #expect(try await Self.storedIDs(clickhouse) == ids.sorted())
            try await second.stop()
        } catch {
            Issue.record(error)
        }
        await node.stop()
        await clickhouse.destroy()
    }

    /// A batch whose INSERT committed but whose answer was lost sits in the spool; replay finds
    /// it stored and does not insert it again.
    @Test func replayDoesNotStoreABatchTwice() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        do {
            try await Self.migrate(clickhouse)
            let records = (0..<10).map { index in
                RequestRecord(
                    timestampMillis: 1_795_749_420_000 + Int64(index), requestID: "landed-\(index)", keyID: 1, keyPrefix: "tg_landed00",
                    network: "ethereum", method: "eth_call", batchSize: 1, computeUnits: 26, httpStatus: 200, rpcErrorCode: nil,
                    upstream: "n", attempts: 1, latencyMicros: 1, upstreamLatencyMicros: 1, bytesIn: 1, bytesOut: 1)
            }
            let payload = TelemetryRowEncoder().encode(records)
            _ = try await clickhouse.client.execute(ClickHouseSchema(database: "tollgate", table: "requests").insertQuery, body: payload)
            let spool = try DiskSpool(settings: .init(directory: directory + "/spool"))
            #expect(try spool.append(payload))
            let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse), directory: directory)
            #expect(await eventually { try await gateway.metric("tollgate_telemetry_batches_already_stored_total") == 1 })
            #expect(await eventually { try await gateway.metric("tollgate_telemetry_spool_bytes") == 0 })
            #expect(try await clickhouse.query("SELECT count() FROM tollgate.requests") == "10")
            try await gateway.stop()
        } catch {
            Issue.record(error)
        }
        await node.stop()
        await clickhouse.destroy()
    }

    @Test func aFullSpoolDropsAndCountsRowsWhileTheGatewayKeepsAnswering() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let node = try await FakeNode.start()
        // Room for a few batches only.
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(clickhouse, spoolMaxBytes: 6_000))
        do {
            try await clickhouse.stop()
            let key = try await gateway.key()
            // Every request is still answered (send() expects 200 each time).
            _ = try await Self.send(200, through: gateway, key: key)
            #expect(await eventually {
                let spooled = try await gateway.metric(#"tollgate_telemetry_events_total{outcome="spooled"}"#)
                let dropped = try await gateway.metric(#"tollgate_telemetry_events_total{outcome="dropped"}"#)
                return spooled + dropped == 200
            })
            #expect(try await gateway.metric(#"tollgate_telemetry_events_total{outcome="dropped"}"#) > 0)
            #expect(try await gateway.metric("tollgate_telemetry_spool_bytes") <= 6_000)
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
        await clickhouse.destroy()
    }
}
