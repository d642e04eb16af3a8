import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// The gateway on real sockets: routes, request IDs, HTTP/1.1 behaviour, readiness, metrics.
@Suite struct GatewayEndToEndTests {
    static let blockNumber = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#

    @Test func keyInPathBearerOrHeader() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key()
        let viaPath = try await harness.post(Self.blockNumber, key: key)
        let viaBearer = try await TestHTTPClient.post(port: harness.port, path: "/v1/ethereum", body: Self.blockNumber,
            headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(key)")])
        let viaHeader = try await TestHTTPClient.post(port: harness.port, path: "/v1/ethereum?x=1", body: Self.blockNumber,
            headers: [("X-API-Key", key)])
        for response in [viaPath, viaBearer, viaHeader] {
            #expect(response.status == 200)
            #expect(response.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1234"}"#)
            #expect(response.header("RateLimit-Limit") == "1000000")
            #expect(response.header("RateLimit-Remaining") != nil && response.header("RateLimit-Reset") != nil)
        }
        try await harness.stop()
        await node.stop()
    }

    @Test func requestIDIsKeptOrMadeAndTravelsUpstream() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key()
        let kept = try await harness.post(Self.blockNumber, key: key, headers: [("Content-Type", "application/json"), ("X-Request-ID", "client-123.abc")])
        #expect(kept.header("X-Request-ID") == "client-123.abc")
        #expect(node.received.last?.header("X-Request-ID") == "client-123.abc")
        let replaced = try await harness.post(Self.blockNumber, key: key, headers: [("X-Request-ID", "has space"), ("Content-Type", "application/json")])
        let made = try #require(replaced.header("X-Request-ID"))
        #expect(made != "has space" && !made.isEmpty)
        #expect(node.received.last?.header("X-Request-ID") == made)
        let tooLong = try await harness.post(Self.blockNumber, key: key, headers: [("X-Request-ID", String(repeating: "a", count: 129))])
        #expect(tooLong.header("X-Request-ID")?.count ?? 0 < 129)
        let another = try await harness.post(Self.blockNumber, key: key)
        #expect(another.header("X-Request-ID") != made)
        try await harness.stop()
        await node.stop()
    }

    @Test func pipelinedRequestsAnswerInOrderOverKeptAliveConnections() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key()
        let client = try await TestHTTPClient.connect(port: harness.port)
        // Sends the calls `ids` in one write, then expects their answers in the same order.
        func pipelined(_ ids: ClosedRange<Int>) async throws {
            var bytes: [UInt8] = []
            for id in ids {
                bytes += TestHTTPClient.requestBytes(path: "/v1/ethereum/\(key)", body: Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"eth_chainId"}"#.utf8))
            }
            try await client.send(raw: bytes)
            for id in ids {
                let response = try #require(try await client.next())
                #expect(response.body == #"{"jsonrpc":"2.0","id":\#(id),"result":"0x1"}"#)
            }
        }
        try await pipelined(1...5)
        // More than the 16 a connection queues: reads pause (autoRead off) while they wait and
        // resume as the queue drains; the requests after them are read and answered too.
        try await pipelined(6...45)
        for _ in 0..<20 { _ = try await client.request(path: "/v1/ethereum/\(key)", body: Self.blockNumber) }
        // 65 requests, one client connection, and the gateway reused its upstream connection.
        #expect(node.requestCount == 65)
        #expect(node.connectionCount <= 3)  // ours, perhaps a redial, and the health checker's
        let closing = try await client.request(path: "/v1/ethereum/\(key)", headers: [("Content-Type", "application/json"), ("Connection", "close")], body: Self.blockNumber)
        #expect(closing.header("Connection") == "close")
        #expect(try await client.next() == nil)
        try await harness.stop()
        await node.stop()
    }

    @Test func healthAndReadiness() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let health = try await TestHTTPClient.connect(port: harness.port)
        #expect(try await health.request(method: "GET", path: "/healthz", headers: []).status == 200)
        #expect(try await health.request(method: "GET", path: "/readyz", headers: []).status == 200)
        await node.stop()
        // Readiness follows the health checks (it never dials a node itself): the next round
        // that finds the only node gone takes the replica out of rotation.
        var notReady: TestResponse?
        #expect(await eventually {
            notReady = try await health.request(method: "GET", path: "/readyz", headers: [])
            return notReady?.status == 503
        })
        #expect(notReady?.body.contains("network ethereum: no healthy node") == true)
        #expect(try await health.request(method: "GET", path: "/healthz", headers: []).status == 200)
        await health.close()
        try await harness.stop()
    }

    @Test func metricsUseTheDesignNames() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key(plan: "free")
        _ = try await harness.post(Self.blockNumber, key: key)
        _ = try await harness.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_madeUp"}"#, key: key)
        // The same kind of request again after another: its handles come from the recorder's
        // last-request set, which must have followed the change of method both ways.
        _ = try await harness.post(Self.blockNumber, key: key)
        _ = try await harness.post(Self.blockNumber, key: "tg_" + String(repeating: "q", count: 43))
        let text = try await harness.metrics()
        #expect(text.contains(#"tollgate_requests_total{network="ethereum",method="eth_blockNumber",status="200",plan="free"} 2"#))
        #expect(text.contains(#"tollgate_requests_total{network="ethereum",method="other",status="200",plan="free"} 1"#))
        #expect(text.contains(#"tollgate_compute_units_total{network="ethereum",plan="free"} 40"#))
        #expect(text.contains(#"tollgate_auth_failures_total{reason="unknown"} 1"#))
        #expect(text.contains("tollgate_gateway_overhead_seconds_bucket{le=\"0.0001\"}"))
        #expect(text.contains(#"tollgate_gateway_overhead_seconds_count 4"#))
        #expect(text.contains(#"tollgate_request_duration_seconds_count{network="ethereum"} 4"#))
        #expect(text.contains(#"tollgate_upstream_requests_total{network="ethereum",upstream="127.0.0.1:\#(node.port)",outcome="ok"} 3"#))
        #expect(text.contains(#"tollgate_upstream_duration_seconds_count{network="ethereum",upstream="127.0.0.1:\#(node.port)"} 3"#))
        #expect(text.contains(#"tollgate_cache_requests_total{network="ethereum",method="eth_blockNumber",result="bypass"} 2"#))
        #expect(text.contains(#"tollgate_cache_requests_total{network="ethereum",method="other",result="bypass"} 1"#))
        #expect(text.contains(#"tollgate_keycache_requests_total{result="miss"} 2"#))  // the key, then the unknown one
        #expect(text.contains(#"tollgate_keycache_requests_total{result="hit"} 2"#))
        try await harness.stop()
        await node.stop()
    }
}

/// Per-key allowlists: origins (with CORS), client addresses (with trusted proxies), networks.
@Suite struct AllowlistTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    @Test func originsAndPreflight() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key { $0.allowedOrigins = ["https://app.example"] }
        let client = try await TestHTTPClient.connect(port: harness.port)
        let allowed = try await client.request(method: "OPTIONS", path: "/v1/ethereum/\(key)", headers: [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")])
        #expect(allowed.status == 204)
        #expect(allowed.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(allowed.header("Access-Control-Allow-Methods")?.contains("POST") == true)
        let refusedPreflight = try await client.request(method: "OPTIONS", path: "/v1/ethereum/\(key)", headers: [("Origin", "https://evil.example")])
        #expect(refusedPreflight.status == 403)
        let real = try await client.request(path: "/v1/ethereum/\(key)", headers: [("Content-Type", "application/json"), ("Origin", "https://app.example")], body: Self.body)
        #expect(real.status == 200)
        #expect(real.header("Access-Control-Allow-Origin") == "https://app.example")
        let evil = try await client.request(path: "/v1/ethereum/\(key)", headers: [("Content-Type", "application/json"), ("Origin", "https://evil.example")], body: Self.body)
        #expect(evil.status == 403)
        #expect(evil.body.jsonObject?.errorCode == -32002)
        await client.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func addressesDirectAndThroughTrustedProxies() async throws {
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.defaultYAML.replacingOccurrences(of: "  listen: 127.0.0.1:0", with: "  listen: 127.0.0.1:0\n  trusted_proxies: [\"127.0.0.1/32\"]")
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let local = try await harness.key { $0.allowedIPs = ["127.0.0.0/8"] }
        let remote = try await harness.key { $0.allowedIPs = ["203.0.113.0/24", "2001:db8::/32"] }
        #expect(try await harness.post(Self.body, key: local).status == 200)
        let direct = try await harness.post(Self.body, key: remote)
        #expect(direct.status == 403)
        #expect(direct.body.jsonObject?.errorCode == -32002)
        // The peer is a trusted proxy: the last untrusted hop is the client.
        let proxied = try await harness.post(Self.body, key: remote, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", "198.51.100.1, 203.0.113.9")])
        #expect(proxied.status == 200)
        let spoofed = try await harness.post(Self.body, key: remote, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", "203.0.113.9, 198.51.100.1")])
        #expect(spoofed.status == 403)
        let v6 = try await harness.post(Self.body, key: remote, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", "2001:db8::7")])
        #expect(v6.status == 200)
        try await harness.stop()
        await node.stop()
    }

    @Test func forwardedForIsIgnoredWithoutTrustedProxies() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let remote = try await harness.key { $0.allowedIPs = ["203.0.113.0/24"] }
        let spoofed = try await harness.post(Self.body, key: remote, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", "203.0.113.9")])
        #expect(spoofed.status == 403)
        try await harness.stop()
        await node.stop()
    }

    @Test func networksPerKeyAndPerPlan() async throws {
        let node = try await FakeNode.start()
        let yaml = """
            networks:
              ethereum:
                chain_id: 1
                upstreams: [{url: "{NODE0}"}]
              sepolia:
                chain_id: 1  # the fake node's chain; this test is about networks, not chains
                upstreams: [{url: "{NODE0}"}]
            plans:
              mainnet_only:
                cu_per_second: 1000
                requests_per_second: 100
                networks: [ethereum]
              any:
                cu_per_second: 1000
                requests_per_second: 100
            """
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let planLimited = try await harness.key(plan: "mainnet_only")
        let keyLimited = try await harness.key(plan: "any") { $0.allowedNetworks = ["sepolia"] }
        #expect(try await harness.post(Self.body, key: planLimited).status == 200)
        #expect(try await harness.post(Self.body, key: planLimited, network: "sepolia").status == 403)
        #expect(try await harness.post(Self.body, key: keyLimited, network: "sepolia").status == 200)
        #expect(try await harness.post(Self.body, key: keyLimited).status == 403)
        try await harness.stop()
        await node.stop()
    }
}
