import Foundation
import Testing
import TollgateTestSupport

/// What the gateway's own HTTP/1.1 framing does with hostile clients, on real sockets.
@Suite struct HTTPHardeningTests {
    static let yaml = GatewayHarness.oneNodeYAML + """
        server:
          max_body_bytes: 100000
          header_timeout_ms: 300
          max_connections_per_ip: 20
        """

    /// A client announcing 999 GB gets its 413 at once, and the connection is gone within the
    /// short linger, not after the idle timeout (or 999 GB).
    @Test func anAnnouncedHugeBodyIs413AtOnceAndTheConnectionCloses() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key()
        let client = try await TestHTTPClient.connect(port: harness.port)
        let started = ContinuousClock.now
        try await client.send(raw: "POST /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-ID: huge-1\r\nContent-Length: 999000000000\r\n\r\n{\"jsonrpc\":")
        let response = try #require(try await client.next(timeout: .seconds(5)))
        #expect(response.status == 413 && response.header("X-Request-ID") == "huge-1" && response.header("Connection") == "close")
        #expect(response.body.contains("-32600"))
        #expect(try await client.next(timeout: .seconds(5)) == nil)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(node.requestCount == 0)
        try await harness.stop()
        await node.stop()
    }

    /// Slowloris: a head trickled a line at a time is cut off at `header_timeout_ms` with a 408,
    /// however often bytes arrive (the idle timeout alone would never fire).
    @Test func aHeadTrickledSlowlyIsCutOffAtTheHeaderTimeout() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let client = try await TestHTTPClient.connect(port: harness.port)
        try await client.send(raw: "POST /v1/ethereum HTTP/1.1\r\n")
        var sent = 0
        while !client.isClosed, sent < 40 {
            try? await client.send(raw: "X-Slow-\(sent): 1\r\n")
            sent += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        let response = try await client.next(timeout: .seconds(5))
        #expect(response?.status == 408, "after \(sent) lines: \(String(describing: response))")
        #expect(response?.header("X-Request-ID") != nil)
        #expect(sent < 20, "the connection stayed open for \(sent) lines of 50 ms")
        try await harness.stop()
        await node.stop()
    }

    @Test func tenThousandHeadersAre431() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let client = try await TestHTTPClient.connect(port: harness.port)
        let headers = (0..<10_000).map { "X-\($0): v\r\n" }.joined()
        try? await client.send(raw: "POST /v1/ethereum HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n")
        let response = try await client.next(timeout: .seconds(5))
        #expect(response?.status == 431)
        #expect(try await client.next(timeout: .seconds(5)) == nil)
        try await harness.stop()
        await node.stop()
    }

    /// Past `max_connections_per_ip`, new connections are closed as they are accepted (and
    /// counted), while the ones already open keep working.
    @Test func connectionsPastThePerAddressCapAreRefused() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key()
        var open: [TestHTTPClient] = []
        for _ in 0..<20 { open.append(try await TestHTTPClient.connect(port: harness.port)) }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        // Each of the 20 is admitted (a request on each proves it).
        for client in open { #expect(try await client.request(path: "/v1/ethereum/\(key)", body: body).status == 200) }
        let extra = try await TestHTTPClient.connect(port: harness.port)
        try? await extra.send(raw: TestHTTPClient.requestBytes(path: "/v1/ethereum/\(key)", body: Array(body.utf8)))
        #expect(try await extra.next(timeout: .seconds(5)) == nil)
        #expect(try await harness.metric(#"tollgate_connections_refused_total{reason="max_connections_per_ip"}"#) == 1)
        // A slot freed is a slot reused.
        await open.removeLast().close()
        #expect(await eventually(timeout: .seconds(5)) {
            let again = try await TestHTTPClient.connect(port: harness.port)
            defer { Task { await again.close() } }
            return try await again.request(path: "/v1/ethereum/\(key)", body: body).status == 200
        })
        for client in open { await client.close() }
        try await harness.stop()
        await node.stop()
    }

    /// `Expect: 100-continue` (curl sends it for bodies over 1 KiB) gets its interim answer, so
    /// the client does not sit out its one-second wait.
    @Test func expectContinueIsAnsweredBeforeTheBody() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        let client = try await TestHTTPClient.connect(port: harness.port)
        try await client.send(raw: "POST /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        let interim = try #require(try await client.next(timeout: .seconds(5)))
        #expect(interim.status == 100)
        try await client.send(raw: body)
        let response = try #require(try await client.next(timeout: .seconds(5)))
        #expect(response.status == 200 && response.body.contains("0x1"))
        await client.close()
        try await harness.stop()
        await node.stop()
    }
}
