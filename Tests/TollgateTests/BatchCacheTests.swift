import NIOCore
import Testing
import TollgateJSONRPC
import TollgateTestSupport

/// Batches through the response cache: hits answered by the gateway, only the misses sent to
/// the node, the answers back in the calls' order whatever order the node answered in.
@Suite struct BatchCacheTests {
    static func call(_ method: String, _ params: String, id: String) -> String { ResponseCacheTests.call(method, params, id: id) }

    @Test func aBatchOfHitsAndMissesComesBackInOrderAndOnlyTheMissesGoUpstream() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: ResponseCacheTests.yaml())
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await ResponseCacheTests.eventually { board.chain.finalized > 0x20 }
        // Two answers the cache then holds: a final block's balance, and the chain id.
        _ = try await harness.post(Self.call("eth_getBalance", #"["0xab","0x10"]"#, id: "7"), key: key)
        _ = try await harness.post(Self.call("eth_chainId", "[]", id: "8"), key: key)
        #expect(node.requestCount == 2)

        let code = Self.call("eth_getCode", #"["0xcd","0x11"]"#, id: "2")
        let other = Self.call("eth_getBalance", #"["0xef","0x12"]"#, id: "4")
        let batch = "[" + [Self.call("eth_getBalance", #"["0xab","0x10"]"#, id: #""a""#), code, Self.call("eth_chainId", "[]", id: "3"), other]
            .joined(separator: ", ") + "]"
        // The node answers the two misses in reverse order.
        node.record(request: "[\(code),\(other)]",
            response: #"[{"jsonrpc":"2.0","id":4,"result":"0x44"},{"jsonrpc":"2.0","id":2,"result":"0x22"}]"#)
        let expected = #"[{"jsonrpc":"2.0","id":"a","result":"0x0"},{"jsonrpc":"2.0","id":2,"result":"0x22"},"#
            + #"{"jsonrpc":"2.0","id":3,"result":"0x1"},{"jsonrpc":"2.0","id":4,"result":"0x44"}]"#
        let first = try await harness.post(batch, key: key)
        #expect(first.status == 200)
        #expect(first.body == expected)
        #expect(node.requestCount == 3)
        #expect(node.received.last?.body == "[\(code),\(other)]")

        // The misses were kept one by one: the whole batch is now answered here.
        let second = try await harness.post(batch, key: key)
        #expect(second.body == expected)
        #expect(node.requestCount == 3)
        let metrics = try await harness.metrics()
        #expect(metrics.contains(#"tollgate_cache_requests_total{network="ethereum",method="batch",result="miss"} 1"#))
        #expect(metrics.contains(#"tollgate_cache_requests_total{network="ethereum",method="batch",result="hit"} 1"#))
        try await harness.stop()
        await node.stop()
    }

    @Test func aBatchKeepsItsHitsWhenTheNodeFailsItsMisses() async throws {
        let node = try await FakeNode.start()
        // 3 s (a try gets 1 s): with 333 ms tries a loaded machine turned the 503s into a timeout.
        let yaml = ResponseCacheTests.yaml().replacingOccurrences(of: "    chain_id: 1\n", with: "    chain_id: 1\n    timeout_ms: 3000\n")
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await ResponseCacheTests.eventually { board.chain.head > 0 }
        // Setup: the hit to keep. Under a loaded machine a health check can time out and the
        // first try meet no healthy node (503), so the priming waits (bounded) for a 200.
        var primed = false
        let deadline = ContinuousClock.now + .seconds(10)
        while !primed, ContinuousClock.now < deadline {
            primed = try await harness.post(Self.call("eth_chainId", "[]", id: "1"), key: key).status == 200
            if !primed { try await Task.sleep(for: .milliseconds(50)) }
        }
        try #require(primed)
        let batch = "[" + Self.call("eth_chainId", "[]", id: "7") + "," + Self.call("eth_getCode", #"["0xcd","latest"]"#, id: "8") + "]"
        node.setHealthMode(.healthy)
        // The node answers the miss with 503s (the pool gives up on it): the hit stays, the miss says why.
        node.setMode(.status(503))
        let failed = try await harness.post(batch, key: key)
        #expect(failed.status == 200)
        let items = try #require(failed.body.jsonArray)
        #expect(items.count == 2)
        #expect(items[0]["id"] as? Int == 7 && items[0]["result"] as? String == "0x1")
        #expect(items[1]["id"] as? Int == 8 && items[1].errorCode == -32603)
        #expect(items[1].errorMessage == "upstream error on network 'ethereum'", "\(failed.body)")
        // It never answers: the same after the attempt timeout.
        node.setMode(.hang)
        let late = try await harness.post(batch, key: key)
        #expect(late.status == 200)
        let lateItems = try #require(late.body.jsonArray)
        #expect(lateItems[0]["result"] as? String == "0x1")
        #expect(lateItems[1]["id"] as? Int == 8 && lateItems[1].errorMessage?.contains("timeout") == true, "\(late.body)")
        try await harness.stop()
        await node.stop()
    }

    @Test func aCallTheNodeLeftUnansweredGetsItsOwnErrorAndDeniedItemsStay() async throws {
        let node = try await FakeNode.start()
        let yaml = ResponseCacheTests.yaml().replacingOccurrences(
            of: "    requests_per_second: 100000\n", with: "    requests_per_second: 100000\n    deny_methods: [\"eth_sendRawTransaction\"]\n")
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await ResponseCacheTests.eventually { board.chain.finalized > 0x20 }
        _ = try await harness.post(Self.call("eth_chainId", "[]", id: "1"), key: key)
        let code = Self.call("eth_getCode", #"["0xcd","0x11"]"#, id: "5")
        let balance = Self.call("eth_getBalance", #"["0xef","0x12"]"#, id: "6")
        // The node answers only one of the two calls it was sent.
        node.record(request: "[\(code),\(balance)]", response: #"[{"jsonrpc":"2.0","id":6,"result":"0x66"}]"#)
        let batch = "[" + [code, Self.call("eth_sendRawTransaction", #"["0x00"]"#, id: "9"), Self.call("eth_chainId", "[]", id: "1"), balance]
            .joined(separator: ",") + "]"
        let reply = try await harness.post(batch, key: key)
        #expect(reply.status == 200)
        let answers = try #require(RPCResponseReader.answers(ByteBuffer(string: reply.body)))
        #expect(answers.map(\.id) == ["5", "1", "6", "9"])  // the calls in order, then the item refused here
        #expect(answers.map(\.result) == [nil, #""0x1""#, #""0x66""#, nil])
        #expect(reply.body.contains(#"{"jsonrpc":"2.0","id":5,"error":{"code":-32603,"message":"the node did not answer this call"}}"#))
        #expect(reply.body.contains(#""id":9,"error":{"code":-32601"#))
        // The answered call was kept, the unanswered one was not.
        node.record(request: "[\(code)]", response: #"[{"jsonrpc":"2.0","id":5,"result":"0x55"}]"#)
        let again = try await harness.post("[\(code),\(balance)]", key: key)
        #expect(again.body == #"[{"jsonrpc":"2.0","id":5,"result":"0x55"},{"jsonrpc":"2.0","id":6,"result":"0x66"}]"#)
        #expect(node.received.last?.body == "[\(code)]")
        try await harness.stop()
        await node.stop()
    }

    @Test func hitsBesideNotificationsAreKeptWhenTheNodeAnswersNothing() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: ResponseCacheTests.yaml())
        let key = try await harness.key()
        _ = try await harness.post(Self.call("eth_chainId", "[]", id: "1"), key: key)
        let notification = #"{"jsonrpc":"2.0","method":"eth_getBalance","params":["0xab","latest"]}"#
        node.record(request: "[\(notification)]", response: "")  // JSON-RPC: no answer to a notification
        let reply = try await harness.post("[\(Self.call("eth_chainId", "[]", id: "2")),\(notification)]", key: key)
        #expect(reply.status == 200)
        #expect(reply.body == #"[{"jsonrpc":"2.0","id":2,"result":"0x1"}]"#)
        #expect(node.received.last?.body == "[\(notification)]")
        try await harness.stop()
        await node.stop()
    }

    @Test func batchAnswerItemsAreFoundWithTheirIDs() throws {
        let body = ByteBuffer(string: #" [ {"jsonrpc":"2.0","id":"x","result":[1,{"id":2}]} , {"id":7,"jsonrpc":"2.0","error":{"code":1}}]"#)
        let items = try #require(RPCResponseReader.batchItems(body))
        let bytes = Array(body.readableBytesView)
        func slice(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        #expect(items.map { slice($0.id) } == [#""x""#, "7"])
        #expect(items.map(\.isError) == [false, true])
        #expect(slice(items[1].span) == #"{"id":7,"jsonrpc":"2.0","error":{"code":1}}"#)
        #expect(RPCResponseReader.batchItems(ByteBuffer(string: "[]")) == [])
        #expect(RPCResponseReader.batchItems(ByteBuffer(string: #"{"id":1,"result":2}"#)) == nil)
        #expect(RPCResponseReader.batchItems(ByteBuffer(string: #"[{"id":1,"result":2},3]"#)) == nil)
        #expect(RPCResponseReader.batchItems(ByteBuffer(string: #"[{"id":1,"result":2}"#)) == nil)
        #expect(RPCResponseReader.batchItems(ByteBuffer(string: #"[{"result":2}]"#)) == nil)
    }
}
