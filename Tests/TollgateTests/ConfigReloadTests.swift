import Foundation
import NIOCore
import Testing
import TollgateApp
@testable import TollgateDataPlane
import TollgateTestSupport

/// Config reload: plans and compute units change under a running gateway; a bad file changes
/// nothing; what needs a restart is named.
@Suite struct ConfigReloadTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    /// `cu`, `burst`: the tight plan's CU rate and burst seconds (1 CU/s with a 7 s burst and
    /// `eth_chainId` at 7 CU: one call, then a 7 s wait, a window no test machine misses).
    static func yaml(
        node: String, rps: Int = 100_000, cu: Int = 1_000_000, burst: Int = 1, chainIDCost: Int? = nil, timeout: Int = 30_000, withTight: Bool = true
    ) -> String {
        """
        server:
          listen: 127.0.0.1:0
        networks:
          ethereum:
            chain_id: 1
            timeout_ms: \(timeout)
            upstreams:
              - url: \(node)
        plans:
          big: {cu_per_second: 1000000, requests_per_second: 100000}
        \(withTight ? "  tight: {cu_per_second: \(cu), requests_per_second: \(rps), burst_seconds: \(burst)}" : "")
        \(chainIDCost.map { "compute_units: {eth_chainId: \($0)}" } ?? "")
        """
    }

    /// A gateway started from a config file (in a temp folder) it can reload; the file's path.
    static func startWithFile(node: FakeNode) async throws -> (GatewayHarness, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-reload-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/tollgate.yaml"
        try yaml(node: node.url).write(toFile: file, atomically: true, encoding: .utf8)
        return (try await GatewayHarness.start(nodes: [node], yaml: yaml(node: node.url), configPath: file), file)
    }

    @Test func plansAndComputeUnitsApplyLiveAndABadFileChangesNothing() async throws {
        let node = try await FakeNode.start()
        let (harness, file) = try await Self.startWithFile(node: node)
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        let reload = try #require(harness.app.configReload)
        let key = try await harness.key(plan: "tight")
        // An open connection carries on across the reloads.
        let client = try await TestHTTPClient.connect(port: harness.port)
        func call() async throws -> TestResponse {
            try await client.request(path: "/v1/ethereum/\(key)", headers: [("Content-Type", "application/json")], body: Self.body)
        }
        for _ in 0..<20 { #expect(try await call().status == 200) }

        // A stricter plan and a new price: both apply to the next request, on the same connection.
        try Self.yaml(node: node.url, cu: 1, burst: 7, chainIDCost: 7).write(toFile: file, atomically: true, encoding: .utf8)
        let applied = await reload.reload()
        #expect(applied.applied == ["compute_units", "plans"] && applied.needRestart.isEmpty && applied.errors.isEmpty)
        let cuBefore = try await harness.metric(#"tollgate_compute_units_total{network="ethereum",plan="tight"}"#)
        #expect(try await call().status == 200)
        #expect(try await harness.metric(#"tollgate_compute_units_total{network="ethereum",plan="tight"}"#) == cuBefore + 7)
        let limited = try await call()
        #expect(limited.status == 429)

        // A file with errors is refused by path; the plan in force stays.
        try Self.yaml(node: node.url, rps: 0).write(toFile: file, atomically: true, encoding: .utf8)
        let refused = await reload.reload()
        #expect(refused.applied.isEmpty && refused.errors.contains { $0.path == "plans.tight.requests_per_second" })
        #expect(try await call().status == 429)

        // A section that needs a restart is named, not applied; networks apply live
        // (`NetworkReloadTests`).
        try Self.yaml(node: node.url, cu: 1, burst: 7, chainIDCost: 7, timeout: 1234).replacingOccurrences(of: "127.0.0.1:0", with: "127.0.0.1:1")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let restart = await reload.reload()
        #expect(restart.applied == ["networks"] && restart.needRestart == ["server"])

        // The key's plan removed: the key is refused by name, without a store lookup.
        try Self.yaml(node: node.url, chainIDCost: 7, timeout: 1234, withTight: false).write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await reload.reload().applied == ["plans"])
        let orphan = try await call()
        #expect(orphan.status == 403 && orphan.body.jsonObject?.errorMessage?.contains("'tight' is not configured") == true)
        await client.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func postReloadOnTheOpsListenerAnswersWithWhatItDid() async throws {
        let node = try await FakeNode.start()
        let (harness, file) = try await Self.startWithFile(node: node)
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        let ops = try await TestHTTPClient.connect(port: harness.metricsPort)
        func post() async throws -> TestResponse { try await ops.request(path: "/reload", headers: [], body: "") }

        try Self.yaml(node: node.url, rps: 1, chainIDCost: 7).write(toFile: file, atomically: true, encoding: .utf8)
        let applied = try await post()
        #expect(applied.status == 200)
        #expect(applied.body == #"{"applied":["compute_units","plans"],"needs_restart":[],"errors":[]}"# + "\n")
        try Self.yaml(node: node.url, rps: 0).write(toFile: file, atomically: true, encoding: .utf8)
        let refused = try await post()
        #expect(refused.status == 422)
        #expect(refused.body.contains(#""applied":[]"#) && refused.body.contains("plans.tight.requests_per_second"))
        // A GET is not an action.
        #expect(try await ops.request(method: "GET", path: "/reload", headers: [], body: "").status == 405)
        await ops.close()
        try await harness.stop()

        // Started without a config file: nothing to reload, said so.
        let plain = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(node: node.url))
        let client = try await TestHTTPClient.connect(port: plain.metricsPort)
        #expect(try await client.request(path: "/reload", headers: [], body: "").status == 409)
        await client.close()
        try await plain.stop()
        await node.stop()
    }

    @Test func actionsComeFromLoopbackPeersOnly() throws {
        #expect(OpsHandler.isLoopback(try SocketAddress(ipAddress: "127.0.0.1", port: 1)))
        #expect(OpsHandler.isLoopback(try SocketAddress(ipAddress: "127.8.9.10", port: 1)))
        #expect(OpsHandler.isLoopback(try SocketAddress(ipAddress: "::1", port: 1)))
        #expect(!OpsHandler.isLoopback(try SocketAddress(ipAddress: "10.0.0.1", port: 1)))
        #expect(!OpsHandler.isLoopback(try SocketAddress(ipAddress: "128.0.0.1", port: 1)))
        #expect(!OpsHandler.isLoopback(try SocketAddress(ipAddress: "2001:db8::1", port: 1)))
        #expect(!OpsHandler.isLoopback(nil))
    }

    @Test func changedSectionsCompareValuesNotText() {
        let a = "plans:\n  free: {cu_per_second: 1, requests_per_second: 1}\nserver:\n  listen: 127.0.0.1:1\n"
        let b = "# a comment\nplans:\n  free:\n    cu_per_second: 1\n    requests_per_second: 1\nserver:\n  listen: 127.0.0.1:2\n"
        #expect(ConfigReloadService.changedSections(a, a) == [])
        #expect(ConfigReloadService.changedSections(a, b) == ["server"])
        #expect(ConfigReloadService.changedSections(a, b + "cache: {enabled: true}\n") == ["cache", "server"])
    }
}
