import Foundation
import Testing
import TollgateTestSupport

/// The shipped alerts and dashboards: valid, tested with promtool, and naming only metrics the
/// gateway really exports.
@Suite struct ObservabilityAssetsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var deploy: URL { root.appendingPathComponent("deploy") }

    static func promtool(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let candidates = ["/usr/bin/promtool", "/usr/local/bin/promtool"]
        guard let path = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ServerScriptFailed(message: "promtool not found: apt-get install prometheus (.ci/run does)")
        }
        let ran = try ChildProcess.runBlocking(path, arguments, directory: deploy.appendingPathComponent("prometheus").path)
        return (ran.status, ran.stdout + ran.stderr)
    }

    @Test func alertRulesPassPromtoolCheckAndTheirUnitTests() throws {
        let check = try Self.promtool(["check", "rules", "alerts.yml"])
        #expect(check.status == 0, "\(check.output)")
        let test = try Self.promtool(["test", "rules", "tests/alerts_test.yml"])
        #expect(test.status == 0, "\(test.output)")
        #expect(test.output.contains("SUCCESS"))
    }

    /// Every `tollgate_*` name in the alerts and dashboards.
    static func namesUsed() throws -> Set<String> {
        var files = [deploy.appendingPathComponent("prometheus/alerts.yml")]
        let grafana = deploy.appendingPathComponent("grafana")
        for name in try FileManager.default.contentsOfDirectory(atPath: grafana.path) where name.hasSuffix(".json") {
            files.append(grafana.appendingPathComponent(name))
        }
        var names = Set<String>()
        let pattern = try Regex("tollgate_[a-z0-9_]+")
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            if file.pathExtension == "json" {
                let board = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
                #expect((board["panels"] as? [Any])?.isEmpty == false, "\(file.lastPathComponent) has panels")
            }
            for match in text.matches(of: pattern) { names.insert(String(text[match.range])) }
        }
        return names
    }

    @Test func dashboardsAndAlertsUseOnlyExportedMetrics() async throws {
        let used = try Self.namesUsed()
        #expect(used.count > 15)
        let node = try await FakeNode.start()
        // A dead ClickHouse URL: the telemetry pipeline exports its metrics while it spools.
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: """
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: {NODE0}
            plans:
              tiny:
                cu_per_second: 100000
                requests_per_second: 1
                burst_seconds: 1
            telemetry:
              clickhouse:
                urls: [http://127.0.0.1:1]
                flush_interval_ms: 50
                max_attempts: 1
              spool_dir: {DIR}/spool
            """)
        do {
            let key = try await gateway.key(plan: "tiny")
            // One request a second: back to back, the second or third is refused. A slow machine
            // may space them out past the refill, so up to ten are sent until one is.
            var statuses: [Int] = []
            for _ in 0..<10 where !statuses.contains(429) {
                statuses.append(try await gateway.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, key: key).status)
            }
            #expect(statuses.contains(200) && statuses.contains(429))
            #expect(try await gateway.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, key: "tg_unknown").status == 401)
            #expect(await eventually { try await gateway.metric(#"tollgate_telemetry_events_total{outcome="spooled"}"#) > 0 })
            let text = try await gateway.metrics()
            var exported = Set<String>()
            for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                let name = String(parts[2])
                exported.insert(name)
                if parts[3] == "histogram" { exported.formUnion([name + "_bucket", name + "_count", name + "_sum"]) }
            }
            let missing = used.subtracting(exported)
            #expect(missing.isEmpty, "used in deploy/ but not exported: \(missing.sorted())")
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }
}
