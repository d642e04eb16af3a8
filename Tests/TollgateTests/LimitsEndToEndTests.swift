import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

@Suite struct LimitsEndToEndTests {
    static func yaml(plan: String, extraServer: String = "") -> String {
        """
        server:
          listen: 127.0.0.1:0
        \(extraServer)
        networks:
          ethereum:
            chain_id: 1
            upstreams: [{url: "{NODE0}"}]
        plans:
          limited:
        \(plan)
        """
    }

    @Test func requestsPerSecondAnswers429WithRetryAfter() async throws {
        let node = try await FakeNode.start()
        // One request per second with five seconds of burst: five pass at once, the sixth waits ~1 s.
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(plan: """
                cu_per_second: 100000
                requests_per_second: 1
                burst_seconds: 5
            """))
        let key = try await harness.key(plan: "limited")
        let client = try await TestHTTPClient.connect(port: harness.port)
        for _ in 0..<5 {
            #expect(try await client.request(path: "/v1/ethereum/\(key)", body: #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#).status == 200)
        }
        let limited = try await client.request(path: "/v1/ethereum/\(key)", body: #"{"jsonrpc":"2.0","id":"q","method":"eth_chainId"}"#)
        #expect(limited.status == 429)
        #expect(limited.header("Retry-After") == "1")
        let body = try #require(limited.body.jsonObject)
        #expect(body.errorCode == -32005)
        #expect(body["id"] as? String == "q")
        let retryMs = try #require(((body["error"] as? [String: Any])?["data"] as? [String: Any])?["retryAfterMs"] as? Int)
        #expect(retryMs > 0 && retryMs <= 1000)
        #expect(limited.header("RateLimit-Remaining") == "0")
        #expect(node.requestCount == 5)
        let metrics = try await harness.metrics()
        #expect(metrics.contains(#"tollgate_ratelimit_rejections_total{plan="limited",kind="requests"} 1"#))
        await client.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func computeUnitsLimitCountsMethodCostsAndBatches() async throws {
        let node = try await FakeNode.start()
        // 1 CU/s with 100 s of burst: 100 CU at once, refilling one CU per second, so the
        // refusal below holds even on a loaded machine (the call would need 4 s of refill).
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(plan: """
                cu_per_second: 1
                requests_per_second: 1000
                burst_seconds: 100
            """))
        let key = try await harness.key(plan: "limited")
        let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]}"#
        let client = try await TestHTTPClient.connect(port: harness.port)
        let first = try await client.request(path: "/v1/ethereum/\(key)", body: "[\(call),\(call),\(call)]")  // 78 CU
        #expect(first.status == 200)
        #expect(first.header("RateLimit-Remaining") == "22")
        let second = try await client.request(path: "/v1/ethereum/\(key)", body: call)  // 26 more: over
        #expect(second.status == 429)
        // Free methods still pass.
        #expect(try await client.request(path: "/v1/ethereum/\(key)", body: #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#).status == 200)
        await client.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func monthlyQuotaAnswers402AndSurvivesARestart() async throws {
        let node = try await FakeNode.start()
        let yaml = Self.yaml(plan: """
                cu_per_second: 100000
                requests_per_second: 100000
                monthly_cu: 50
            """)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key(plan: "limited")
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#  // 10 CU
        for _ in 0..<5 { #expect(try await harness.post(body, key: key).status == 200) }
        let spent = try await harness.post(body, key: key)
        #expect(spent.status == 402)
        #expect(spent.body.jsonObject?.errorCode == -32005)
        try await harness.stop()

        // Usage was flushed at shutdown; a new process on the same file still refuses.
        let restarted = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: harness.directory)
        #expect(try await restarted.post(body, key: key).status == 402)
        #expect(try await restarted.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#, key: key).status == 200)
        try await restarted.stop()
        await node.stop()
    }

    @Test func revokedKeyStopsWorkingWithinThePositiveTTL() async throws {
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.defaultYAML.replacingOccurrences(of: "  listen: 127.0.0.1:0", with: "  listen: 127.0.0.1:0\n  auth_cache: {positive_ttl_ms: 300, negative_ttl_ms: 100}")
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        #expect(try await harness.post(body, key: key).status == 200)
        #expect(try await harness.app.keyStore.revoke(prefix: String(key.prefix(11))))
        let revokedAt = ContinuousClock.now
        var status = 200
        while status == 200, ContinuousClock.now - revokedAt < .seconds(5) {
            status = try await harness.post(body, key: key).status
            if status == 200 { try await Task.sleep(for: .milliseconds(20)) }  // poll interval, not synchronisation
        }
        #expect(status == 403)
        #expect(ContinuousClock.now - revokedAt < .seconds(2))
        try await harness.stop()
        await node.stop()
    }
}

@Suite struct UpstreamEndToEndTests {
    static let body = #"{"jsonrpc":"2.0","id":5,"method":"eth_blockNumber"}"#

    static func yaml(nodes: Int, timeoutMs: Int = 30000) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            timeout_ms: \(timeoutMs)
            upstreams:
        \((0..<nodes).map { "      - url: {NODE\($0)}" }.joined(separator: "\n"))
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000
        """
    }

    @Test func refusedConnectionsFailOverToTheNextNode() async throws {
        let dead = try await FakeNode.start()
        await dead.stop()
        let live = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [dead, live], yaml: Self.yaml(nodes: 2))
        let key = try await harness.key()
        for _ in 0..<10 {
            let response = try await harness.post(Self.body, key: key)
            #expect(response.status == 200)
        }
        #expect(live.requestCount == 10)
        try await harness.stop()
        await live.stop()
    }

    @Test func serverErrorsAreRetriedOnAnotherNodeAndTheSickNodeIsCutOff() async throws {
        let sick = try await FakeNode.start()
        sick.setMode(.status(502))
        sick.setHealthMode(.healthy)  // passes its checks, fails real calls: only passive checks catch it
        let live = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [sick, live], yaml: Self.yaml(nodes: 2))
        let key = try await harness.key()
        // One connection stays on one event loop, so one pool's breaker sees every failure.
        let client = try await TestHTTPClient.connect(port: harness.port)
        for _ in 0..<30 { #expect(try await client.request(path: "/v1/ethereum/\(key)", body: Self.body).status == 200) }
        #expect(live.requestCount == 30)
        // Five failures in a row open its circuit: after that it gets nothing.
        #expect(sick.requestCount <= 5)
        await client.close()
        try await harness.stop()
        await sick.stop()
        await live.stop()
    }

    @Test func writesAreNotRetriedAfterTheNodeSawThem() async throws {
        let sick = try await FakeNode.start()
        sick.setMode(.status(500))
        sick.setHealthMode(.healthy)
        let live = try await FakeNode.start()
        // Slower than the sick node's fresh estimate, so the balancer tries the sick one within two writes.
        live.setMode(.slow(.milliseconds(10)))
        let harness = try await GatewayHarness.start(nodes: [sick, live], yaml: Self.yaml(nodes: 2))
        let key = try await harness.key()
        let send = #"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x00"]}"#
        let client = try await TestHTTPClient.connect(port: harness.port)
        var statuses: [Int] = []
        while sick.requestCount == 0 && statuses.count < 5 {
            statuses.append(try await client.request(path: "/v1/ethereum/\(key)", body: send).status)
        }
        await client.close()
        // Each write reached exactly one node: a 502 from the sick one was not resent.
        #expect(sick.requestCount == 1)
        #expect(statuses.filter { $0 == 502 }.count == 1)
        #expect(statuses.filter { $0 == 200 }.count == live.requestCount)
        #expect(statuses.count == sick.requestCount + live.requestCount)
        try await harness.stop()
        await sick.stop()
        await live.stop()
    }

    @Test func noReachableNodeAnswers503() async throws {
        let a = try await FakeNode.start()
        let b = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [a, b], yaml: Self.yaml(nodes: 2))
        await a.stop()
        await b.stop()
        let key = try await harness.key()
        let response = try await harness.post(Self.body, key: key)
        #expect(response.status == 503)
        let body = try #require(response.body.jsonObject)
        #expect(body.errorCode == -32603)
        #expect(body.errorMessage?.contains("ethereum") == true)
        #expect(body["id"] as? Int == 5)
        try await harness.stop()
    }

    @Test func slowNodeAnswers504AtTheDeadline() async throws {
        let hung = try await FakeNode.start()
        hung.setMode(.hang)
        hung.setHealthMode(.healthy)
        let harness = try await GatewayHarness.start(nodes: [hung], yaml: Self.yaml(nodes: 1, timeoutMs: 300))
        let key = try await harness.key()
        let response = try await harness.post(Self.body, key: key)
        #expect(response.status == 504)
        #expect(response.body.jsonObject?.errorCode == -32603)
        // The gateway still serves once the node recovers. (Polled: with a 300 ms budget, one
        // request on a machine loaded by the parallel suite can miss it and be a fair 504.)
        hung.setMode(.healthy)
        var after: TestResponse?
        #expect(await eventually(timeout: .seconds(10)) {
            after = try await harness.post(Self.body, key: key)
            return after?.status == 200
        }, "\(String(describing: after?.status)) \(after?.body ?? "")")
        try await harness.stop()
        await hung.stop()
    }

    @Test func singleSickNodeAnswers502UntilItsCircuitOpens() async throws {
        let sick = try await FakeNode.start()
        sick.setMode(.status(500))
        sick.setHealthMode(.healthy)
        let harness = try await GatewayHarness.start(nodes: [sick], yaml: Self.yaml(nodes: 1))
        let key = try await harness.key()
        let client = try await TestHTTPClient.connect(port: harness.port)
        for _ in 0..<5 {
            let response = try await client.request(path: "/v1/ethereum/\(key)", body: Self.body)
            #expect(response.status == 502)
            #expect(response.body.jsonObject?.errorCode == -32603)
        }
        // Five failures in a row: the circuit is open and the pool has no eligible node.
        let refused = try await client.request(path: "/v1/ethereum/\(key)", body: Self.body)
        #expect(refused.status == 503)
        #expect(sick.requestCount == 5)
        let node = try #require(((try await harness.status()["networks"] as? [[String: Any]])?.first?["nodes"] as? [[String: Any]])?.first)
        #expect(node["circuit"] as? String == "open")
        #expect(node["healthy"] as? Bool == true)
        #expect((node["last_error"] as? String)?.contains("500") == true)
        await client.close()
        try await harness.stop()
        await sick.stop()
    }
}
