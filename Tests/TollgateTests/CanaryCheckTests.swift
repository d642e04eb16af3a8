import Foundation
import Synchronization
import Testing
import TollgateTestSupport

/// `deploy/canary/check` against a real Prometheus (Debian's) scraping three Tollgate
/// processes: the stable version, a canary as good as it, and a canary whose node fails. The
/// good one is promoted, the failing one rolled back, and too little traffic means wait.
@Suite(.serialized) struct CanaryCheckTests {
    static let check = RunbookTests.root.appendingPathComponent("deploy/canary/check").path
    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/prometheus")

    @Test func theCheckPromotesAGoodCanaryAndRollsBackAFailingOne() async throws {
        let good = try await FakeNode.start()
        let failing = try await FakeNode.start()
        failing.setMode(.status(500))
        let stable = try await GatewayHarness.start(nodes: [good])
        let canary = try await GatewayHarness.start(nodes: [good])
        let broken = try await GatewayHarness.start(nodes: [failing])
        let directory = stable.directory + "/prometheus"
        let port = try await ClickHouseServer.freePortRun(1, range: 20_000...21_900)
        try await ClickHouseServer.script([
            Self.script, "start", directory, String(port),
            "127.0.0.1:\(stable.metricsPort)=track:stable,variant:stable",
            "127.0.0.1:\(canary.metricsPort)=track:canary,variant:good",
            "127.0.0.1:\(broken.metricsPort)=track:canary,variant:bad",
        ])
        do {
            let keys = [try await stable.key(), try await canary.key(), try await broken.key()]
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (harness, key) in zip([stable, canary, broken], keys) {
                    group.addTask {
                        _ = try await LoadDriver.run(
                            ports: [harness.port], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: 1, duration: .seconds(4))
                    }
                }
                try await group.waitForAll()
            }
            let prometheus = "http://127.0.0.1:\(port)"
            func verdict(_ variant: String, minimum: String = "200") async throws -> ChildProcess.Result {
                try await ChildProcess.run("/usr/bin/env", [
                    "python3", Self.check, "--prometheus", prometheus, "--window", "1m", "--stable", #"variant="stable""#,
                    "--canary", #"variant="\#(variant)""#, "--min-requests", minimum,
                ])
            }
            // Prometheus has the whole run once a scrape after the load has landed.
            #expect(await eventually { try await verdict("bad").status == 1 })
            let bad = try await verdict("bad")
            #expect(bad.status == 1 && bad.output.hasPrefix("rollback: canary 5xx"), "\(bad.output)")
            let fine = try await verdict("good")
            #expect(fine.status == 0 && fine.output.hasPrefix("promote:"), "\(fine.output)")
            print("canary check: \(bad.output.trimmingCharacters(in: .newlines)) | \(fine.output.trimmingCharacters(in: .newlines))")
            let early = try await verdict("good", minimum: "100000000")
            #expect(early.status == 3 && early.output.hasPrefix("wait:"), "\(early.output)")
            let nowhere = try await ChildProcess.run("/usr/bin/env", ["python3", Self.check, "--prometheus", "http://127.0.0.1:1"])
            #expect(nowhere.status == 2 && nowhere.output.contains("error:"), "\(nowhere.output)")
        } catch {
            Issue.record(error)
        }
        try? await ClickHouseServer.script([Self.script, "stop", directory])
        for harness in [stable, canary, broken] { try await harness.stop() }
        await good.stop()
        await failing.stop()
    }
}
