import Foundation
import NIOCore
import Testing
import TollgateTestSupport

/// Issue 3's fault matrix: a pool of three nodes, one faulty, a steady stream of reads.
@Suite struct UpstreamFaultTests {
    enum Fault: String, CaseIterable, Sendable {
        case refuse, hang, status500, garbage, drop, slow, flap
    }

    static let yaml = """
        networks:
          ethereum:
            chain_id: 1
            timeout_ms: 5000
            health_check: {interval_ms: 200, timeout_ms: 1000}
            attempt_timeout_ms: 250
            circuit_breaker: {consecutive_failures: 3, cool_down_ms: 300, successes_to_close: 1}
            upstreams:
              - url: {NODE0}
              - url: {NODE1}
              - url: {NODE2}
        plans:
          big: {cu_per_second: 1000000, requests_per_second: 100000}
        """

    static let body = #"{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber","params":[]}"#

    @Test(arguments: Fault.allCases)
    func noClientRequestFailsAndTheNodeReturnsAfterRecovery(fault: Fault) async throws {
        var faulty = try await FakeNode.start()
        let healthy = [try await FakeNode.start(), try await FakeNode.start()]
        let harness = try await GatewayHarness.start(nodes: [faulty] + healthy, yaml: Self.yaml)
        let key = try await harness.key()
        let port = faulty.port
        switch fault {
        case .refuse: await faulty.stop()
        case .hang: faulty.setMode(.hang)
        case .status500: faulty.setMode(.status(500))
        case .garbage: faulty.setMode(.garbage)
        case .drop: faulty.setMode(.drop)
        case .slow: faulty.setMode(.slow(.seconds(2)))
        case .flap: faulty.setMode(.flap(.milliseconds(150)))
        }
        // One connection: one event loop, one pool, so one breaker sees every failure.
        let client = try await TestHTTPClient.connect(port: harness.port)
        var sent: [String] = []
        for _ in 0..<40 {
            let response = try await client.request(path: "/v1/ethereum/\(key)", body: Self.body)
            #expect(response.status == 200, "\(fault): \(response.status) \(response.body)")
            #expect(response.body == #"{"jsonrpc":"2.0","id":7,"result":"0x1234"}"#, "\(fault)")
            sent.append(response.header("X-Request-ID") ?? "-")
        }
        // A flapping node may serve in its good phases; every other fault leaves all to the
        // healthy two: they saw every request, and nothing else. Counted by request ID: on a
        // loaded machine (the whole suite at once) an exchange with a healthy node can outlast
        // the 250 ms attempt timeout and be tried on the other healthy node as well.
        if fault != .flap {
            let seen = healthy.flatMap { $0.received.compactMap { $0.header("X-Request-ID") } }
            #expect(Set(seen) == Set(sent), "\(fault): the healthy nodes saw \(seen.count) requests for \(sent.count) sent")
            #expect(Set(sent).count == 40)
        }

        // Recovery: the node comes back and, once its circuit's cool-down has passed, takes traffic again.
        if fault == .refuse {
            faulty = try await FakeNode.start(port: port)
        } else {
            faulty.setMode(.healthy)
        }
        let before = faulty.requestCount
        let deadline = ContinuousClock.now + .seconds(10)
        while faulty.requestCount == before, ContinuousClock.now < deadline {
            #expect(try await client.request(path: "/v1/ethereum/\(key)", body: Self.body).status == 200)
            try await Task.sleep(for: .milliseconds(20))  // a steady stream, not a flood
        }
        if faulty.requestCount == before {
            let status = (try? await harness.status()).map { "\($0)" } ?? "-"
            Issue.record("\(fault): the recovered node got no traffic; health checks seen: \(faulty.healthCheckCount); status: \(status)")
        }
        await client.close()
        try await harness.stop()
        await faulty.stop()
        for node in healthy { await node.stop() }
    }

    @Test func aNodeOnTheWrongChainIsNeverUsed() async throws {
        let wrong = try await FakeNode.start()
        wrong.setChainID("0x5")
        let good = [try await FakeNode.start(), try await FakeNode.start()]
        let harness = try await GatewayHarness.start(nodes: [wrong] + good, yaml: Self.yaml)
        let key = try await harness.key()
        for _ in 0..<30 { #expect(try await harness.post(Self.body, key: key).status == 200) }
        #expect(wrong.requestCount == 0)
        #expect(wrong.healthCheckCount > 0)
        #expect(harness.app.healthBoards["ethereum"]?.cells[0].chainMatches == false)
        #expect(harness.app.healthBoards["ethereum"]?.cells[0].error == "node is on chain 5, not 1")
        let network = try #require((try await harness.status()["networks"] as? [[String: Any]])?.first)
        #expect(network["name"] as? String == "ethereum")
        #expect(network["eligible_nodes"] as? Int == 2)
        #expect(network["head"] as? Int == 0x1234)
        let nodes = try #require(network["nodes"] as? [[String: Any]])
        #expect(nodes[0]["chain_matches"] as? Bool == false)
        #expect(nodes[0]["healthy"] as? Bool == false)
        #expect(nodes[0]["last_error"] as? String == "node is on chain 5, not 1")
        #expect(nodes[1]["healthy"] as? Bool == true && nodes[1]["lag"] as? Int == 0)
        try await harness.stop()
        for node in [wrong] + good { await node.stop() }
    }

    @Test func aLaggingNodeLeavesRotationUntilItCatchesUp() async throws {
        let behind = try await FakeNode.start()
        behind.setHead(0x1234 - 20)  // max_block_lag defaults to 10
        let others = [try await FakeNode.start(), try await FakeNode.start()]
        let harness = try await GatewayHarness.start(nodes: [behind] + others, yaml: Self.yaml)
        let key = try await harness.key()
        for _ in 0..<30 { #expect(try await harness.post(Self.body, key: key).status == 200) }
        #expect(behind.requestCount == 0)
        let metrics = try await harness.metrics()
        let upstream = "127.0.0.1:\(behind.port)"
        #expect(metrics.contains(#"tollgate_upstream_lag_blocks{network="ethereum",upstream="\#(upstream)"} 20"#))
        #expect(metrics.contains(#"tollgate_upstream_block_height{network="ethereum",upstream="\#(upstream)"} 4640"#))
        #expect(metrics.contains(#"tollgate_upstream_healthy{network="ethereum",upstream="\#(upstream)"} 1"#))
        #expect(metrics.contains(#"tollgate_circuit_state{network="ethereum",upstream="\#(upstream)"} 0"#))
        behind.setHead(0x1234)
        let deadline = ContinuousClock.now + .seconds(10)
        while behind.requestCount == 0, ContinuousClock.now < deadline {
            #expect(try await harness.post(Self.body, key: key).status == 200)
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(behind.requestCount > 0, "the node that caught up got no traffic")
        try await harness.stop()
        for node in [behind] + others { await node.stop() }
    }

    @Test func aPoolOfOneFaultyNodeAnswersQuickly() async throws {
        let hung = try await FakeNode.start()
        hung.setMode(.hang)
        let harness = try await GatewayHarness.start(nodes: [hung], yaml: """
            networks:
              ethereum:
                chain_id: 1
                timeout_ms: 12000
                health_check: {interval_ms: 200, timeout_ms: 200}
                upstreams: [{url: "{NODE0}"}]
            plans:
              big: {cu_per_second: 1000000, requests_per_second: 100000}
            """)
        let key = try await harness.key()
        let started = ContinuousClock.now
        let response = try await harness.post(Self.body, key: key)
        // Its health check timed out, so the pool has no eligible node: 503 at once, naming the
        // network, instead of trying the hung node (a 4 s attempt timeout; far from any load noise).
        #expect(response.status == 503)
        #expect(response.body.jsonObject?.errorMessage?.contains("ethereum") == true)
        #expect(ContinuousClock.now - started < .seconds(3))
        try await harness.stop()
        await hung.stop()
    }
}

@Suite struct UpstreamSettingsEndToEndTests {
    @Test func nodeHeadersAreSentAndMethodTimeoutsOutlastTheDefault() async throws {
        // A variable every process has: tests never set one, since setenv beside a process
        // spawned by another test (which copies the environment) can crash the test process.
        let path = try #require(ProcessInfo.processInfo.environment["PATH"])
        let node = try await FakeNode.start()
        node.setMode(.slow(.milliseconds(500)))
        let harness = try await GatewayHarness.start(nodes: [node], yaml: """
            networks:
              ethereum:
                chain_id: 1
                timeout_ms: 200
                method_timeouts_ms: {eth_getLogs: 3000}
                upstreams:
                  - url: {NODE0}
                    headers: {Authorization: "env:PATH"}
            plans:
              big: {cu_per_second: 1000000, requests_per_second: 100000}
            """)
        let key = try await harness.key()
        let logs = try await harness.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{}]}"#, key: key)
        #expect(logs.status == 200)
        #expect(node.received.last?.header("Authorization") == path)
        let quick = try await harness.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#, key: key)
        #expect(quick.status == 504)
        try await harness.stop()
        await node.stop()
    }
}

@Suite struct HedgingTests {
    /// A gateway in front of two nodes that hedges reads after `hedgeDelayMillis`.
    static func gateway(nodes: [FakeNode], hedgeDelayMillis: Int) async throws -> GatewayHarness {
        try await GatewayHarness.start(nodes: nodes, yaml: """
            networks:
              ethereum:
                chain_id: 1
                hedge: {delay_ms: \(hedgeDelayMillis)}
                upstreams: [{url: "{NODE0}"}, {url: "{NODE1}"}]
            plans:
              big: {cu_per_second: 1000000, requests_per_second: 100000}
            """)
    }

    @Test func aSlowNodeIsHedgedAndTheFastAnswerWins() async throws {
        let slow = try await FakeNode.start()
        slow.setMode(.slow(.seconds(1)))
        slow.setHealthMode(.healthy)
        let fast = try await FakeNode.start()
        // 50 ms: slower than the hedge delay, so every request is hedged whichever node goes first.
        fast.setMode(.slow(.milliseconds(50)))
        // Different heads (within the allowed lag) tell which node answered.
        slow.setHead(1_000)
        fast.setHead(1_005)
        let harness = try await Self.gateway(nodes: [slow, fast], hedgeDelayMillis: 20)
        let key = try await harness.key()
        let client = try await TestHTTPClient.connect(port: harness.port)
        for _ in 0..<20 {
            let response = try await client.request(path: "/v1/ethereum/\(key)", body: #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#)
            #expect(response.status == 200)
            // Whichever node went first, the fast node's answer is the one returned.
            #expect(response.body == #"{"jsonrpc":"2.0","id":1,"result":"0x3ed"}"#)
        }
        await client.close()
        // Every request went to both; the fast answer won each time and the slow leg was cancelled.
        #expect(fast.requestCount == 20)
        #expect(slow.requestCount == 20)
        let metrics = try await harness.metrics()
        #expect(metrics.contains(#"tollgate_upstream_hedges_total{network="ethereum"} 20"#))
        try await harness.stop()
        await slow.stop()
        await fast.stop()
    }

    /// The pool recycles an answered request (and its first exchange) for a later one, while a
    /// hedge's cancelled leg may still be reporting back. Many connections at once, every request
    /// hedged, each with its own JSON-RPC id: every client gets its own answer, none is lost.
    @Test func recycledPoolRequestsNeverMixUpAnswers() async throws {
        let slow = try await FakeNode.start()
        slow.setMode(.slow(.milliseconds(200)))
        slow.setHealthMode(.healthy)
        let fast = try await FakeNode.start()
        fast.setMode(.slow(.milliseconds(30)))
        let harness = try await Self.gateway(nodes: [slow, fast], hedgeDelayMillis: 10)
        let key = try await harness.key()
        let answered = try await withThrowingTaskGroup(of: [String].self) { group in
            for client in 0..<8 {
                group.addTask {
                    let connection = try await TestHTTPClient.connect(port: harness.port)
                    var problems: [String] = []
                    for index in 0..<12 {
                        let id = client * 1_000 + index
                        let response = try await connection.request(
                            path: "/v1/ethereum/\(key)", body: #"{"jsonrpc":"2.0","id":\#(id),"method":"eth_blockNumber"}"#)
                        if response.status != 200 || !response.body.hasPrefix(#"{"jsonrpc":"2.0","id":\#(id),"#) {
                            problems.append("sent id \(id), got \(response.status) \(response.body)")
                        }
                    }
                    await connection.close()
                    return problems
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(answered.isEmpty, "\(answered)")
        let metrics = try await harness.metrics()
        let hedges = metrics.split(separator: "\n").first { $0.hasPrefix(#"tollgate_upstream_hedges_total{network="ethereum"} "#) }
            .flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
        #expect(hedges >= 48, "at least half of the 96 requests were hedged (every one is, with a 30 ms node and a 10 ms delay)")
        try await harness.stop()
        await slow.stop()
        await fast.stop()
    }

    @Test func writesAreNeverHedged() async throws {
        let slow = try await FakeNode.start()
        slow.setMode(.slow(.milliseconds(300)))
        slow.setHealthMode(.healthy)
        let other = try await FakeNode.start()
        other.setMode(.slow(.milliseconds(300)))
        other.setHealthMode(.healthy)
        let harness = try await Self.gateway(nodes: [slow, other], hedgeDelayMillis: 10)
        let key = try await harness.key()
        for _ in 0..<3 {
            let response = try await harness.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x00"]}"#, key: key)
            #expect(response.status == 200)
        }
        // Three writes, three node requests: none was sent twice.
        #expect(slow.requestCount + other.requestCount == 3)
        try await harness.stop()
        await slow.stop()
        await other.stop()
    }
}

@Suite struct SentTransactionTests {
    /// A real raw transaction and its hash, from the execution-apis suite.
    static func vector() throws -> (request: String, hash: String) {
        let file = ConformanceTests.root.appendingPathComponent("eth_sendRawTransaction/send-access-list-transaction.io")
        let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
        let request = String(try #require(lines.first { $0.hasPrefix(">> ") }).dropFirst(3))
        let response = String(try #require(lines.first { $0.hasPrefix("<< ") }).dropFirst(3))
        let hash = try #require(response.jsonObject?["result"] as? String)
        return (request, hash)
    }

    static let yaml = """
        networks:
          ethereum:
            chain_id: 1
            upstreams: [{url: "{NODE0}"}]
        plans:
          big: {cu_per_second: 1000000, requests_per_second: 100000}
        """

    @Test func alreadyKnownIsTheEarlierSuccess() async throws {
        let (request, hash) = try Self.vector()
        let node = try await FakeNode.start()
        node.record(request: request, response: #"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"already known"}}"#)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key()
        let response = try await harness.post(request, key: key)
        #expect(response.status == 200)
        #expect(response.body == #"{"jsonrpc":"2.0","id":1,"result":"\#(hash)"}"#)
        try await harness.stop()
        await node.stop()
    }

    @Test func nonceTooLowCountsOnlyWhenThePoolKnowsTheTransaction() async throws {
        let (request, hash) = try Self.vector()
        let lookup = #"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":["\#(hash)"]}"#
        let tooLow = #"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low: next nonce 4, tx nonce 3"}}"#
        let node = try await FakeNode.start()
        node.record(request: request, response: tooLow)
        node.record(request: lookup, response: #"{"jsonrpc":"2.0","id":1,"result":{"hash":"\#(hash)"}}"#)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key()
        let known = try await harness.post(request, key: key)
        #expect(known.body == #"{"jsonrpc":"2.0","id":1,"result":"\#(hash)"}"#)
        #expect(node.received.map(\.body).contains(lookup))
        // Not known to the pool: the node's own error goes back untouched.
        node.record(request: lookup, response: #"{"jsonrpc":"2.0","id":1,"result":null}"#)
        let unknown = try await harness.post(request, key: key)
        #expect(unknown.body == tooLow)
        try await harness.stop()
        await node.stop()
    }
}
