import Foundation
import NIOCore
import NIOWebSocket
import Testing
import TollgateTestSupport

/// JSON-RPC over WebSocket against the real application: the hand-over, calls and batches
/// through the same stages as HTTP, frames per RFC 6455, the plan's limits, slow clients, drain.
@Suite struct WebSocketTests {
    static let yaml = GatewayHarness.defaultYAML.replacingOccurrences(
        of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.1:0\n  ws_max_send_buffer_bytes: 65536") + """

          ws:
            cu_per_second: 1000000
            requests_per_second: 100000
            max_batch: 100
            max_ws_batch: 3
            max_ws_connections: 2
            deny_methods: ["eth_sendRawTransaction"]
        """

    static func call(_ id: Int, _ method: String = "eth_blockNumber") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":[]}"#
    }

    @Test func handOverThenCallsAndBatches() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key(plan: "ws")
        let socket = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        #expect(socket.status == 101)
        // RFC 6455 §1.3's own example nonce and answer.
        #expect(socket.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(socket.header("X-Request-ID") != nil)
        #expect(try await harness.metric(#"tollgate_ws_connections{network="ethereum"}"#) == 1)

        try await socket.send(text: Self.call(7))
        let answer = try #require(try await socket.nextText())
        #expect(answer == #"{"jsonrpc":"2.0","id":7,"result":"0x1234"}"#)

        try await socket.send(text: "[" + Self.call(1) + "," + Self.call(2, "eth_chainId") + "]")
        let batch = try #require(try await socket.nextText()?.json as? [[String: Any]])
        #expect(batch.compactMap { $0["id"] as? Int }.sorted() == [1, 2])

        // The plan's deny list and its WebSocket batch cap, answered on the open socket.
        try await socket.send(text: Self.call(3, "eth_sendRawTransaction"))
        let denied = try #require(try await socket.nextText()?.json as? [String: Any])
        #expect((denied["error"] as? [String: Any])?["code"] as? Int == -32601)
        #expect(denied["id"] as? Int == 3)
        try await socket.send(text: "[" + (1...4).map { Self.call($0) }.joined(separator: ",") + "]")
        let tooMany = try #require(try await socket.nextText())
        #expect(tooMany.contains("exceeds the plan's 3 over a WebSocket"))
        try await socket.send(text: "{not json")
        #expect(try await socket.nextText()?.contains("-32700") == true)

        // Still open after every refusal; the calls were counted as requests.
        try await socket.send(text: Self.call(9))
        #expect(try await socket.nextText()?.contains(#""id":9"#) == true)
        #expect(try await harness.metric(#"tollgate_requests_total{network="ethereum",method="eth_blockNumber",status="200",plan="ws"}"#) >= 2)

        // The close handshake: the client's code comes back, then the server closes.
        var code = ByteBuffer()
        code.write(webSocketErrorCode: .normalClosure)
        try await socket.send(WebSocketFrame(fin: true, opcode: .connectionClose, data: code))
        #expect(try await socket.closeCode() == 1000)
        #expect(try await socket.nextFrame() == nil)
        try await waitFor { try await harness.metric(#"tollgate_ws_connections{network="ethereum"}"#) == 0 }
        try await harness.stop()
        await node.stop()
    }

    @Test func headerKeyWsPathPingAndFragments() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key(plan: "ws")
        let socket = try await TestWebSocket.connect(port: harness.port, path: "/ws/v1/ethereum", headers: [("X-API-Key", key)])
        #expect(socket.status == 101)
        try await socket.send(WebSocketFrame(fin: true, opcode: .ping, data: ByteBuffer(string: "hi")))
        let pong = try #require(try await socket.nextFrame())
        #expect(pong.opcode == .pong)
        #expect(String(buffer: pong.data) == "hi")
        // One message in three frames.
        let text = Self.call(5)
        let parts = [text.prefix(10), text.dropFirst(10).prefix(10), text.dropFirst(20)].map { ByteBuffer(string: String($0)) }
        try await socket.send(WebSocketFrame(fin: false, opcode: .text, data: parts[0]))
        try await socket.send(WebSocketFrame(fin: false, opcode: .continuation, data: parts[1]))
        try await socket.send(WebSocketFrame(fin: true, opcode: .continuation, data: parts[2]))
        #expect(try await socket.nextText()?.contains(#""id":5"#) == true)
        // An unmasked client frame is a protocol error (§5.1): 1002.
        try await socket.send(text: Self.call(6), masked: false)
        #expect(try await socket.closeCode() == 1002)
        await socket.close()
        try await harness.stop()
        await node.stop()
    }

    /// With Redis, max_ws_connections holds for the fleet: one socket on each of two replicas
    /// fills a plan of two, a third is refused on either, and closing one frees a slot for any.
    @Test func theWebSocketLimitHoldsAcrossReplicasSharingARedis() async throws {
        let redis = try await RedisServers.make(ports: 1)
        try await redis.start()
        defer { redis.destroy() }
        let node = try await FakeNode.start()
        let yaml = Self.yaml + """

            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(redis.base)"]
            """
        // One key store for both (the same SQLite file), as replicas share PostgreSQL.
        let first = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let second = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: first.directory)
        let key = try await first.key(plan: "ws")
        let onFirst = try await TestWebSocket.connect(port: first.port, path: "/v1/ethereum/\(key)")
        let onSecond = try await TestWebSocket.connect(port: second.port, path: "/v1/ethereum/\(key)")
        #expect(onFirst.status == 101 && onSecond.status == 101)
        for gateway in [first, second] {
            let third = try await TestWebSocket.connect(port: gateway.port, path: "/v1/ethereum/\(key)")
            #expect(third.status == 429)
            #expect(third.refusalBody.contains("across the fleet"), "\(third.refusalBody)")
        }
        // Calls still work on the open sockets.
        try await onSecond.send(text: Self.call(3))
        #expect(try await onSecond.nextText() == #"{"jsonrpc":"2.0","id":3,"result":"0x1234"}"#)
        await onSecond.close()
        try await waitFor {
            let again = try await TestWebSocket.connect(port: first.port, path: "/v1/ethereum/\(key)")
            defer { Task { await again.close() } }
            return again.status == 101
        }
        await onFirst.close()
        try await second.stop()
        try await first.stop()
        await node.stop()
    }

    @Test func refusedHandOvers() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key(plan: "ws")

        let unknown = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/tg_live_unknownkeyunknownkeyunknownkey12")
        #expect(unknown.status == 401)
        #expect(unknown.refusalBody.contains("-32001") || unknown.refusalBody.contains("API key"))
        try await waitFor { unknown.isClosed }

        let version = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)",
            raw: "GET /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(TestWebSocket.nonce)\r\nSec-WebSocket-Version: 8\r\n\r\n")
        #expect(version.status == 426)
        #expect(version.header("Sec-WebSocket-Version") == "13")

        let badNonce = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)",
            raw: "GET /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n")
        #expect(badNonce.status == 400)

        let unknownNetwork = try await TestWebSocket.connect(port: harness.port, path: "/v1/nowhere/\(key)")
        #expect(unknownNetwork.status == 404)

        // max_ws_connections: 2. The third waits for one of them to close.
        let first = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        let second = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        #expect(first.status == 101 && second.status == 101)
        let third = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        #expect(third.status == 429)
        #expect(third.header("Retry-After") == "5")
        #expect(third.refusalBody.contains("2 open WebSockets"))
        await first.close()
        try await waitFor {
            let again = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
            defer { Task { await again.close() } }
            return again.status == 101
        }
        await second.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func slowClientIsClosedOthersKeepGoing() async throws {
        let node = try await FakeNode.start()
        let big = #"{"jsonrpc":"2.0","id":1,"result":"0x"# + String(repeating: "ab", count: 50_000) + #""}"#
        let request = #"{"jsonrpc":"2.0","id":1,"method":"eth_getCode","params":["0x00000000000000000000000000000000000000aa","latest"]}"#
        node.record(request: request, response: big)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key(plan: "ws")
        let slow = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)", receiveBuffer: 4096)
        let healthy = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        try await slow.setAutoRead(false)
        // 100 KB answers to a client that reads nothing: the kernel's buffers fill, then the
        // gateway's bound (64 KiB here), and the client is cut off.
        for _ in 0..<400 {
            // The gateway may cut the client off between two sends: the next send then fails.
            do { try await slow.send(text: request) } catch { break }
            if try await harness.metric("tollgate_ws_slow_consumer_closes_total") >= 1 { break }
        }
        try await waitFor { try await harness.metric("tollgate_ws_slow_consumer_closes_total") == 1 }
        try await healthy.send(text: Self.call(4))
        #expect(try await healthy.nextText()?.contains(#""id":4"#) == true)
        try? await slow.setAutoRead(true)  // it may be closed already
        // What was already in the kernel's buffers arrives, then the connection ends.
        while try await slow.nextFrame() != nil {}
        #expect(slow.isClosed)
        await healthy.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func shutdownAnswersInFlightCallsThenSays1001() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key(plan: "ws")
        let socket = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        node.setHealthMode(.healthy)
        node.setMode(.slow(.milliseconds(600)))
        try await socket.send(text: Self.call(11))
        try await waitFor { node.received.contains { $0.body.contains(#""id":11"#) } }
        let stopping = Task { try await harness.stop() }
        #expect(try await socket.nextText()?.contains(#""id":11"#) == true)
        #expect(try await socket.closeCode() == 1001)
        try await stopping.value
        await node.stop()
    }
}

/// Awaits a condition on another side of a socket (a metric, a close).
private func waitFor(_ condition: () async throws -> Bool) async throws {
    let held = await eventually(condition)
    #expect(held)
}
