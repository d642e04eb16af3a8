import Foundation
import NIOCore
import Testing
import TollgateTestSupport

/// `eth_subscribe("newHeads")` through the gateway against fake nodes that push heads over
/// WebSocket and can be killed, stalled and reorged: one upstream subscription for every
/// client, each block exactly once and in order across failovers, a reorg's new branch from
/// the common ancestor, the plan's limits and CU per event.
@Suite struct SubscriptionTests {
    static func yaml(stallMillis: Int = 60_000) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            ws_stall_ms: \(stallMillis)
            upstreams:
              - url: {NODE0}
                ws_url: {WS0}
              - url: {NODE1}
                ws_url: {WS1}
        plans:
          subs:
            cu_per_second: 1000000
            requests_per_second: 100000
            max_subscriptions: 2
            event_cu:
              newHeads: 20
        """
    }

    struct Started {
        var nodes: [FakeNode]
        var harness: GatewayHarness
        var key: String
    }

    static func start(stallMillis: Int = 60_000, head: UInt64 = 100) async throws -> Started {
        let nodes = [try await FakeNode.start(), try await FakeNode.start()]
        for node in nodes { node.setHead(head) }
        var text = yaml(stallMillis: stallMillis)
        for (index, node) in nodes.enumerated() { text = text.replacingOccurrences(of: "{WS\(index)}", with: node.webSocketURL) }
        let harness = try await GatewayHarness.start(nodes: nodes, yaml: text)
        return Started(nodes: nodes, harness: harness, key: try await harness.key(plan: "subs"))
    }

    /// How long a client waits for its next message. Longer than `TestWebSocket`'s 10 s: these
    /// tests start with some 460 others on two cores, and in that first wave a feed that moves
    /// between nodes (600 ms stall timeout) once took longer than 10 s to deliver.
    static let patience: Duration = .seconds(30)

    /// Subscribes and returns the subscription id.
    static func subscribe(_ socket: TestWebSocket, id: Int = 1) async throws -> String {
        try await socket.send(text: #"{"jsonrpc":"2.0","id":\#(id),"method":"eth_subscribe","params":["newHeads"]}"#)
        let answer = try #require(try await socket.nextText(timeout: patience)?.json as? [String: Any])
        return try #require(answer["result"] as? String, "\(answer)")
    }

    /// The next `count` heads a client hears: (number, hash).
    static func heads(_ socket: TestWebSocket, _ count: Int) async throws -> [(UInt64, String)] {
        var heads: [(UInt64, String)] = []
        while heads.count < count, let text = try await socket.nextText(timeout: patience) {
            guard let object = text.json as? [String: Any], object["method"] as? String == "eth_subscription",
                let result = (object["params"] as? [String: Any])?["result"] as? [String: Any],
                let number = (result["number"] as? String).flatMap({ UInt64($0.dropFirst(2), radix: 16) }), let hash = result["hash"] as? String
            else { continue }
            heads.append((number, hash))
        }
        return heads
    }

    static func advance(_ nodes: [FakeNode], to head: UInt64) {
        for node in nodes { node.setHead(head) }
    }

    @Test func oneUpstreamSubscriptionEveryBlockOnceAcrossAKilledNode() async throws {
        let s = try await Self.start()
        var clients: [TestWebSocket] = []
        for _ in 0..<5 {
            // A key each: the plan allows two subscriptions per key.
            let key = try await s.harness.key(plan: "subs")
            let socket = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(key)")
            _ = try await Self.subscribe(socket)
            clients.append(socket)
        }
        try await waitFor { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 1 }
        let serving = s.nodes[0].subscriberCount == 1 ? 0 : 1
        // The first head only earns the node trust; the second is the first sent.
        for head in UInt64(101)...104 { Self.advance(s.nodes, to: head) ; try await Task.sleep(for: .milliseconds(20)) }
        for client in clients { #expect(try await Self.heads(client, 3).map(\.0) == [102, 103, 104]) }

        // The serving node dies; the other takes over, and what it missed is fetched.
        await s.nodes[serving].stop()
        let other = s.nodes[1 - serving]
        try await waitFor { other.subscriberCount == 1 }
        for head in UInt64(105)...108 { other.setHead(head); try await Task.sleep(for: .milliseconds(20)) }
        for client in clients { #expect(try await Self.heads(client, 4).map(\.0) == [105, 106, 107, 108]) }
        #expect(try await s.harness.metric(#"tollgate_ws_subscriptions{network="ethereum",kind="newHeads"}"#) == 5)
        #expect(try await s.harness.metric(#"tollgate_ws_backfilled_total{network="ethereum",kind="newHeads"}"#) >= 1)
        // 7 heads to 5 clients at 20 CU each, charged to the key.
        #expect(try await s.harness.metric(#"tollgate_ws_events_total{network="ethereum",kind="newHeads"}"#) == 35)
        #expect(try await s.harness.metric(#"tollgate_compute_units_total{network="ethereum",plan="subs"}"#) >= 35 * 20)
        #expect(try await s.harness.metric(#"tollgate_requests_total{network="ethereum",method="eth_subscription",status="200",plan="subs"}"#) >= 5)
        for client in clients { await client.close() }
        try await waitFor { try await s.harness.metric(#"tollgate_ws_subscriptions{network="ethereum",kind="newHeads"}"#) == 0 }
        try await s.harness.stop()
        await other.stop()
    }

    /// A subscription goes to a node that has shown fresh heads in a row, not simply the next
    /// in turn: the first node lags ten blocks behind the network, so the second one serves.
    @Test func aSubscriptionGoesToANodeWithFreshHeads() async throws {
        let nodes = [try await FakeNode.start(), try await FakeNode.start()]
        nodes[0].setHead(90)
        nodes[1].setHead(100)
        var text = Self.yaml().replacingOccurrences(
            of: "    ws_stall_ms: 60000\n", with: "    ws_stall_ms: 60000\n    max_block_lag: 2\n    health_check: {interval_ms: 100}\n")
        #expect(text.contains("max_block_lag: 2"))
        for (index, node) in nodes.enumerated() { text = text.replacingOccurrences(of: "{WS\(index)}", with: node.webSocketURL) }
        let harness = try await GatewayHarness.start(nodes: nodes, yaml: text)
        let board = try #require(harness.app.healthBoards["ethereum"])
        // Node 0 may have looked fresh before node 1's head was known (its 90 was the best
        // then); the first check after that resets it, and it stays at 0 from then on.
        #expect(await eventually { board.cells[1].freshStreak >= 2 && board.chain.head == 100 && board.cells[0].freshStreak == 0 })
        let key = try await harness.key(plan: "subs")
        let socket = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
        _ = try await Self.subscribe(socket)
        #expect(await eventually { nodes[1].subscriberCount == 1 })
        #expect(nodes[0].subscriberCount == 0)
        await socket.close()
        try await harness.stop()
        for node in nodes { await node.stop() }
    }

    @Test func aStalledNodeIsReplacedAndTheGapFilled() async throws {
        let s = try await Self.start(stallMillis: 600)
        let socket = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(s.key)")
        _ = try await Self.subscribe(socket)
        try await waitFor { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 1 }
        let serving = s.nodes[0].subscriberCount == 1 ? 0 : 1
        for head in UInt64(101)...102 { Self.advance(s.nodes, to: head); try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await Self.heads(socket, 1).map(\.0) == [102])
        // Open but silent: after the stall timeout the other node serves.
        s.nodes[serving].pausePushes(true)
        Self.advance(s.nodes, to: 103)
        Self.advance(s.nodes, to: 104)
        let other = s.nodes[1 - serving]
        try await waitFor { other.subscriberCount == 1 }
        // The chain goes on (a block every 100 ms, within the stall timeout): whatever the feed
        // does meanwhile, the client sees every block from 103 once, in order. It goes on until
        // the client has them: on a loaded machine the feed may flap between the nodes for a
        // while, and a gap is filled when the next block arrives (a chain that stopped early
        // left the feed with nothing to fill it from, and the test timed out one run in six).
        let nodes = s.nodes
        let chain = Task {
            var head: UInt64 = 104
            while !Task.isCancelled, head < 1_000 {
                head += 1
                Self.advance(nodes, to: head)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(try await Self.heads(socket, 8).map(\.0) == Array(103...110))
        chain.cancel()
        await socket.close()
        try await s.harness.stop()
        for node in s.nodes { await node.stop() }
    }

    @Test func aReorgSendsTheNewBranchFromTheAncestor() async throws {
        let s = try await Self.start()
        let socket = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(s.key)")
        _ = try await Self.subscribe(socket)
        try await waitFor { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 1 }
        for head in UInt64(101)...105 { Self.advance(s.nodes, to: head); try await Task.sleep(for: .milliseconds(20)) }
        let before = try await Self.heads(socket, 4)
        #expect(before.map(\.0) == [102, 103, 104, 105])
        // 104 and 105 are replaced; the new branch's 106 arrives.
        for node in s.nodes { node.reorg(depth: 2) }
        Self.advance(s.nodes, to: 106)
        let after = try await Self.heads(socket, 3)
        #expect(after.map(\.0) == [104, 105, 106])
        #expect(after[0].1 != before[2].1)
        #expect(after[1].1 != before[3].1)
        await socket.close()
        try await s.harness.stop()
        for node in s.nodes { await node.stop() }
    }

    /// A WebSocket batch may carry subscription calls beside ordinary ones: one answer for the
    /// batch with the new subscription's id in it, then that subscription's events. Over HTTP
    /// the same batch gets an error for each subscription call and the node's answers for the rest.
    @Test func aBatchCarriesSubscriptionsBesideCalls() async throws {
        let s = try await Self.start()
        let socket = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(s.key)")
        let batch = #"[{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]},"#
            + #"{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]},"#
            + #"{"jsonrpc":"2.0","id":3,"method":"eth_unsubscribe","params":["0x00"]},"#
            + #"{"jsonrpc":"2.0","id":4,"method":"eth_subscribe","params":["bogus"]}]"#
        try await socket.send(text: batch)
        let answer = try #require(try await socket.nextText()?.json as? [[String: Any]])
        func item(_ id: Int) -> [String: Any]? { answer.first { $0["id"] as? Int == id } }
        #expect(answer.count == 4)
        let subscription = try #require(item(1)?["result"] as? String, "\(answer)")
        #expect(subscription.hasPrefix("0x") && subscription.count == 34)
        #expect(item(2)?["result"] as? String == "0x1")
        #expect(item(3)?["result"] as? Bool == false)
        #expect((item(4)?["error"] as? [String: Any])?["code"] as? Int == -32602)
        // Heads come under the id the batch gave (the node's first head only earns it trust).
        try await waitFor { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 1 }
        for head in UInt64(101)...102 { Self.advance(s.nodes, to: head); try await Task.sleep(for: .milliseconds(20)) }
        var delivered: [String: Any]?
        while delivered == nil, let text = try await socket.nextText() {
            guard let object = text.json as? [String: Any], object["method"] as? String == "eth_subscription" else { continue }
            delivered = object["params"] as? [String: Any]
        }
        #expect(delivered?["subscription"] as? String == subscription)
        #expect((delivered?["result"] as? [String: Any])?["number"] as? String == "0x66")
        // It counts against the plan's two, like a single subscribe: one more fits, then none.
        _ = try await Self.subscribe(socket, id: 5)
        try await socket.send(text: #"[{"jsonrpc":"2.0","id":6,"method":"eth_subscribe","params":["newHeads"]}]"#)
        var refused: [[String: Any]]?
        while refused == nil, let text = try await socket.nextText() { refused = text.json as? [[String: Any]] }
        #expect((refused?.first?["error"] as? [String: Any])?["code"] as? Int == -32005)

        let http = try await s.harness.post(batch, key: s.key)
        #expect(http.status == 200)
        let items = try #require(http.body.json as? [[String: Any]])
        #expect(items.count == 4)
        let first = items.first { $0["id"] as? Int == 1 }?["error"] as? [String: Any]
        #expect(first?["code"] as? Int == -32601 && (first?["message"] as? String)?.contains("needs a WebSocket") == true)
        #expect(items.first { $0["id"] as? Int == 2 }?["result"] as? String == "0x1")
        await socket.close()
        try await s.harness.stop()
        for node in s.nodes { await node.stop() }
    }

    @Test func limitsAndRefusals() async throws {
        let s = try await Self.start()
        let socket = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(s.key)")
        let first = try await Self.subscribe(socket, id: 1)
        _ = try await Self.subscribe(socket, id: 2)
        // max_subscriptions: 2.
        try await socket.send(text: #"{"jsonrpc":"2.0","id":3,"method":"eth_subscribe","params":["newHeads"]}"#)
        let refused = try #require(try await socket.nextText()?.json as? [String: Any])
        #expect((refused["error"] as? [String: Any])?["code"] as? Int == -32005)
        #expect(refused["id"] as? Int == 3)
        try await socket.send(text: #"{"jsonrpc":"2.0","id":4,"method":"eth_unsubscribe","params":["\#(first)"]}"#)
        #expect(try await socket.nextText() == #"{"jsonrpc":"2.0","id":4,"result":true}"#)
        try await socket.send(text: #"{"jsonrpc":"2.0","id":5,"method":"eth_unsubscribe","params":["\#(first)"]}"#)
        #expect(try await socket.nextText() == #"{"jsonrpc":"2.0","id":5,"result":false}"#)
        _ = try await Self.subscribe(socket, id: 6)
        try await socket.send(text: #"{"jsonrpc":"2.0","id":7,"method":"eth_subscribe","params":["bogus"]}"#)
        #expect(try await socket.nextText()?.contains("-32602") == true)
        // Over HTTP, a subscription cannot be delivered: a clear error, not the node's.
        let http = try await s.harness.post(#"{"jsonrpc":"2.0","id":8,"method":"eth_subscribe","params":["newHeads"]}"#, key: s.key)
        #expect(http.status == 400)
        #expect(http.body.contains("needs a WebSocket"))
        await socket.close()
        try await s.harness.stop()
        for node in s.nodes { await node.stop() }
    }
}

/// Many clients on one feed, and one of them too slow.
@Suite struct SubscriptionFanoutTests {
    static func start(padding: Int = 0) async throws -> (nodes: [FakeNode], harness: GatewayHarness, key: String) {
        let nodes = [try await FakeNode.start(), try await FakeNode.start()]
        for node in nodes {
            node.setHead(100)
            node.setBlockPadding(padding)
        }
        let yaml = """
            server:
              ws_max_send_buffer_bytes: 65536
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: {NODE0}
                    ws_url: \(nodes[0].webSocketURL)
                  - url: {NODE1}
                    ws_url: \(nodes[1].webSocketURL)
            plans:
              many:
                cu_per_second: 100000000
                requests_per_second: 100000
                max_subscriptions: 1000
            """
        let harness = try await GatewayHarness.start(nodes: nodes, yaml: yaml)
        return (nodes, harness, try await harness.key(plan: "many"))
    }

    @Test func twoHundredClientsShareOneUpstreamSubscription() async throws {
        let (nodes, harness, key) = try await Self.start()
        var clients: [TestWebSocket] = []
        for _ in 0..<200 {
            let socket = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")
            _ = try await SubscriptionTests.subscribe(socket)
            clients.append(socket)
        }
        try await waitFor { nodes[0].subscriberCount + nodes[1].subscriberCount == 1 }
        for head in UInt64(101)...105 { SubscriptionTests.advance(nodes, to: head); try await Task.sleep(for: .milliseconds(20)) }
        for client in clients { #expect(try await SubscriptionTests.heads(client, 4).map(\.0) == [102, 103, 104, 105]) }
        #expect(nodes[0].subscriberCount + nodes[1].subscriberCount == 1)
        #expect(try await harness.metric(#"tollgate_ws_events_total{network="ethereum",kind="newHeads"}"#) == 800)
        for client in clients { await client.close() }
        try await harness.stop()
        for node in nodes { await node.stop() }
    }

    @Test func aClientThatStopsReadingIsCutOffTheOthersKeepEveryBlock() async throws {
        // 16 KB heads: a few hundred fill the kernel's buffers, then the gateway's 64 KiB bound.
        let (nodes, harness, key) = try await Self.start(padding: 16_384)
        let healthy = [try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)"),
                       try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)")]
        for client in healthy { _ = try await SubscriptionTests.subscribe(client) }
        let slow = try await TestWebSocket.connect(port: harness.port, path: "/v1/ethereum/\(key)", receiveBuffer: 4096)
        _ = try await SubscriptionTests.subscribe(slow)
        try await slow.setAutoRead(false)
        try await waitFor { nodes[0].subscriberCount + nodes[1].subscriberCount == 1 }
        var head: UInt64 = 100
        for _ in 0..<60 {
            head += 16
            SubscriptionTests.advance(nodes, to: head)
            try await Task.sleep(for: .milliseconds(20))
            if try await harness.metric("tollgate_ws_slow_consumer_closes_total") >= 1 { break }
        }
        try await waitFor { try await harness.metric("tollgate_ws_slow_consumer_closes_total") == 1 }
        head += 1
        SubscriptionTests.advance(nodes, to: head)
        for client in healthy {
            #expect(try await SubscriptionTests.heads(client, Int(head - 101)).map(\.0) == Array(102...head))
        }
        try? await slow.setAutoRead(true)  // it may be closed already
        while try await slow.nextFrame() != nil {}
        #expect(slow.isClosed)
        for client in healthy { await client.close() }
        try await harness.stop()
        for node in nodes { await node.stop() }
    }
}

/// `logs` and `newPendingTransactions` through the same shared feeds.
@Suite struct LogSubscriptionTests {
    struct Log: Equatable {
        var block: UInt64
        var address: String
        var removed: Bool
        var hash: String
    }

    static func subscribeLogs(_ socket: TestWebSocket, address: String, id: Int = 1) async throws -> String {
        try await socket.send(text: #"{"jsonrpc":"2.0","id":\#(id),"method":"eth_subscribe","params":["logs",{"address":"\#(address)"}]}"#)
        let answer = try #require(try await socket.nextText()?.json as? [String: Any])
        return try #require(answer["result"] as? String, "\(answer)")
    }

    static func logs(_ socket: TestWebSocket, _ count: Int) async throws -> [Log] {
        var logs: [Log] = []
        while logs.count < count, let text = try await socket.nextText() {
            guard let object = text.json as? [String: Any], let result = (object["params"] as? [String: Any])?["result"] as? [String: Any],
                let number = (result["blockNumber"] as? String).flatMap({ UInt64($0.dropFirst(2), radix: 16) })
            else { continue }
            logs.append(Log(block: number, address: result["address"] as? String ?? "", removed: result["removed"] as? Bool ?? false,
                hash: result["blockHash"] as? String ?? ""))
        }
        return logs
    }

    @Test func everyLogOnceAcrossAKilledNodeAndRemovedOnAReorg() async throws {
        let s = try await SubscriptionTests.start()
        let a = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(s.key)")
        let b = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(try await s.harness.key(plan: "subs"))")
        _ = try await Self.subscribeLogs(a, address: FakeNode.logAddressA)
        // The same filter written in capitals shares the feed; another address has its own.
        _ = try await Self.subscribeLogs(b, address: FakeNode.logAddressA.uppercased().replacingOccurrences(of: "0X", with: "0x"))
        _ = try await Self.subscribeLogs(b, address: FakeNode.logAddressB, id: 2)
        try await waitFor { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 2 }
        #expect(try await s.harness.metric(#"tollgate_ws_subscriptions{network="ethereum",kind="logs"}"#) == 3)
        for head in UInt64(101)...104 { SubscriptionTests.advance(s.nodes, to: head); try await Task.sleep(for: .milliseconds(20)) }
        #expect(try await Self.logs(a, 4).map(\.block) == [101, 102, 103, 104])

        // The other node moves on to 106 (nobody hears it), then both feeds' node dies: the
        // other's logs from 104 on are read back, each sent once.
        let serving = s.nodes[0].subscriberCount == 2 ? 0 : 1
        let other = s.nodes[1 - serving]
        for head in UInt64(105)...106 { other.setHead(head) }
        await s.nodes[serving].stop()
        try await waitFor { other.subscriberCount == 2 }
        other.setHead(107)
        #expect(try await Self.logs(a, 3).map(\.block) == [105, 106, 107])
        // b holds both filters: 0x…aa's log in every block, 0x…bb's in the even ones.
        let bLogs = try await Self.logs(b, 10)
        #expect(bLogs.filter { $0.address == FakeNode.logAddressA }.map(\.block) == Array(101...107))
        #expect(bLogs.filter { $0.address == FakeNode.logAddressB }.map(\.block) == [102, 104, 106])

        // A reorg of 106 and 107: their logs come back removed, then the new branch's.
        other.reorg(depth: 2)
        let reorged = try await Self.logs(a, 4)
        #expect(reorged.map(\.block) == [106, 107, 106, 107])
        #expect(reorged.map(\.removed) == [true, true, false, false])
        #expect(reorged[0].hash != reorged[2].hash)
        #expect(try await s.harness.metric(#"tollgate_ws_backfilled_total{network="ethereum",kind="logs"}"#) >= 2)
        await a.close()
        await b.close()
        try await s.harness.stop()
        await other.stop()
    }

    @Test func pendingTransactionsAreFannedOut() async throws {
        let s = try await SubscriptionTests.start()
        let socket = try await TestWebSocket.connect(port: s.harness.port, path: "/v1/ethereum/\(s.key)")
        try await socket.send(text: #"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newPendingTransactions"]}"#)
        let id = try #require((try await socket.nextText()?.json as? [String: Any])?["result"] as? String)
        try await waitFor { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 1 }
        let hash = "0x" + String(repeating: "ab", count: 32)
        for node in s.nodes { node.pushPendingTransaction(hash) }
        let text = try #require(try await socket.nextText())
        #expect(text == #"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"\#(id)","result":"\#(hash)"}}"#)
        await socket.close()
        try await s.harness.stop()
        for node in s.nodes { await node.stop() }
    }
}

private func waitFor(_ condition: () async throws -> Bool) async throws {
    let held = await eventually(condition)
    #expect(held)
}

extension SubscriptionTests {
    /// With Redis, max_subscriptions holds for the fleet: one subscription on each of two
    /// replicas fills a plan of two, a third is refused on either, an unsubscribe frees a slot
    /// for any, and a subscription made in a batch holds a fleet slot too.
    @Test func theSubscriptionLimitHoldsAcrossReplicasSharingARedis() async throws {
        let redis = try await RedisServers.make(ports: 1)
        try await redis.start()
        defer { redis.destroy() }
        let nodes = [try await FakeNode.start(), try await FakeNode.start()]
        for node in nodes { node.setHead(100) }
        var text = Self.yaml() + "\nredis:\n  mode: standalone\n  addresses: [\"127.0.0.1:\(redis.base)\"]\n"
        for (index, node) in nodes.enumerated() { text = text.replacingOccurrences(of: "{WS\(index)}", with: node.webSocketURL) }
        // One key store for both (the same SQLite file), as replicas share PostgreSQL.
        let first = try await GatewayHarness.start(nodes: nodes, yaml: text)
        let second = try await GatewayHarness.start(nodes: nodes, yaml: text, directory: first.directory)
        let key = try await first.key(plan: "subs")
        let onFirst = try await TestWebSocket.connect(port: first.port, path: "/v1/ethereum/\(key)")
        let onSecond = try await TestWebSocket.connect(port: second.port, path: "/v1/ethereum/\(key)")
        func subscribe(_ socket: TestWebSocket, id: Int) async throws -> [String: Any] {
            try await socket.send(text: #"{"jsonrpc":"2.0","id":\#(id),"method":"eth_subscribe","params":["newHeads"]}"#)
            while let text = try await socket.nextText() {
                if let object = text.json as? [String: Any], object["id"] as? Int == id { return object }
            }
            Issue.record("socket closed")
            return [:]
        }
        // The second's subscription comes in a batch (admitted on its own count, held in the
        // fleet's), the first's alone: the plan's two are taken.
        try await onSecond.send(text: #"[{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}]"#)
        let batch = try #require(try await onSecond.nextText()?.json as? [[String: Any]])
        let held = try #require(batch.first?["result"] as? String, "\(batch)")
        #expect(try await subscribe(onFirst, id: 2)["result"] is String)
        // Each replica holds one, under the plan's two: only the fleet count can refuse.
        for socket in [onFirst, onSecond] {
            let third = try await subscribe(socket, id: 3)
            #expect(third.errorCode == -32005 && third.errorMessage?.contains("across the fleet") == true, "\(third)")
        }
        // An unsubscribe on the second frees its slot for the first.
        try await onSecond.send(text: #"{"jsonrpc":"2.0","id":4,"method":"eth_unsubscribe","params":["\#(held)"]}"#)
        try await waitFor { try await subscribe(onFirst, id: 5)["result"] is String }
        await onFirst.close()
        await onSecond.close()
        try await second.stop()
        try await first.stop()
        for node in nodes { await node.stop() }
    }
}
