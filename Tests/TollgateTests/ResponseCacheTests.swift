import Foundation
import NIOCore
import NIOEmbedded
import Synchronization
import Testing
import TollgateCore
@testable import TollgateDataPlane
import TollgateJSONRPC
import TollgateTestSupport

/// The response cache's rules on plain values.
@Suite struct CachePolicyTests {
    let policy = CachePolicy()

    func params(_ json: String) -> JSONValue { RPCParams.parse(json)! }

    @Test func finalBlocksAreImmutableTheMovingHeadIsNotAndPendingNever() {
        #expect(policy.lifetime(method: "eth_chainId", params: params("[]"), finalized: 0) == .immutable)
        #expect(policy.lifetime(method: "eth_getBalance", params: params(#"["0xab","0x10"]"#), finalized: 0x20) == .immutable)
        #expect(policy.lifetime(method: "eth_getBalance", params: params(#"["0xab","0x30"]"#), finalized: 0x20) == .untilHead)
        #expect(policy.lifetime(method: "eth_getBalance", params: params(#"["0xab","latest"]"#), finalized: 0x20) == .untilHead)
        #expect(policy.lifetime(method: "eth_getBalance", params: params(#"["0xab"]"#), finalized: 0x20) == .untilHead)
        #expect(policy.lifetime(method: "eth_getBalance", params: params(#"["0xab","pending"]"#), finalized: 0x20) == .never)
        #expect(policy.lifetime(method: "eth_call", params: params(#"[{"to":"0xab"},{"blockHash":"0xfe"}]"#), finalized: 0) == .immutable)
        #expect(policy.lifetime(method: "eth_getLogs", params: params(#"[{"fromBlock":"0x1","toBlock":"0x10"}]"#), finalized: 0x20) == .immutable)
        #expect(policy.lifetime(method: "eth_getLogs", params: params(#"[{"fromBlock":"0x1","toBlock":"latest"}]"#), finalized: 0x20) == .untilHead)
        #expect(policy.lifetime(method: "eth_sendRawTransaction", params: params(#"["0x"]"#), finalized: 0) == .never)
        #expect(policy.lifetime(method: "eth_newFilter", params: params("[{}]"), finalized: 0) == .never)
        // Finality unknown (0): nothing pinned to a number is immutable.
        #expect(policy.lifetime(method: "eth_getBalance", params: params(#"["0xab","0x1"]"#), finalized: 0) == .untilHead)
        let off = CachePolicy(overrides: ["eth_chainId": .never])
        #expect(off.lifetime(method: "eth_chainId", params: params("[]"), finalized: 0) == .never)
    }

    @Test func policiesMatchGlobsInOrderAndCarryTheirOwnTTL() {
        let table = CachePolicy(policies: [
            .init(methods: "debug_trace*", rule: .constant),
            .init(methods: "eth_get*", ttl: .seconds(5)),
            .init(methods: "eth_getBalance", rule: .never),  // too late: eth_get* matched it first
            .init(methods: "eth_call", rule: .head, ttl: .seconds(2)),
            .init(methods: "trace_*"),  // no rule and none built in: still never
        ])
        #expect(table.rule(for: "debug_traceTransaction") == .constant)
        #expect(table.rule(for: "debug_getRawBlock") == .never)
        #expect(table.rule(for: "eth_getBalance") == .atBlock(param: 1))
        #expect(table.ttl(for: "eth_getBalance") == .seconds(5) && table.ttl(for: "eth_getCode") == .seconds(5))
        #expect(table.rule(for: "eth_getFooBar") == .never)
        #expect(table.rule(for: "eth_call") == .head && table.ttl(for: "eth_call") == .seconds(2))
        #expect(table.rule(for: "trace_block") == .never)
        #expect(table.rule(for: "eth_chainId") == .constant && table.ttl(for: "eth_chainId") == nil)
        #expect(table.lifetime(method: "eth_call", params: params(#"[{"to":"0xab"},"0x1"]"#), finalized: 0x20) == .untilHead)
    }

    @Test func nullEmptyAndUnminedAnswersAreNotStored() {
        let receipt = #"{"blockNumber":"0x10","status":"0x1"}"#
        #expect(policy.lifetime(of: params(receipt), method: "eth_getTransactionReceipt", requested: .untilHead, finalized: 0x20) == .immutable)
        #expect(policy.lifetime(of: params(receipt), method: "eth_getTransactionReceipt", requested: .untilHead, finalized: 0x08) == .untilHead)
        #expect(policy.lifetime(of: params("null"), method: "eth_getTransactionReceipt", requested: .untilHead, finalized: 0x20) == .never)
        #expect(policy.lifetime(of: params(#"{"blockNumber":null}"#), method: "eth_getTransactionByHash", requested: .untilHead, finalized: 0x20) == .never)
        #expect(policy.lifetime(of: params("null"), method: "eth_getBlockByNumber", requested: .immutable, finalized: 0x20) == .never)
        #expect(policy.lifetime(of: params("[]"), method: "eth_getLogs", requested: .untilHead, finalized: 0x20) == .never)
        #expect(policy.lifetime(of: params("[]"), method: "eth_getLogs", requested: .immutable, finalized: 0x20) == .immutable)
        #expect(policy.lifetime(of: nil, method: "eth_chainId", requested: .immutable, finalized: 0) == .never)
    }
}

/// The in-process shard on plain values: what it drops, and why.
@Suite struct ResponseCacheShardTests {
    func entry(_ size: Int, epoch: UInt64? = nil, expiresAt: Int64 = 1_000) -> ResponseCacheShard.Entry {
        .init(body: ByteBuffer(repeating: 0x41, count: size), id: 0..<1, epoch: epoch, expiresAt: expiresAt)
    }

    @Test func entriesGoWhenRoomIsNeededTheirTTLPassesOrTheHeadMoves() {
        var shard = ResponseCacheShard(maxBytes: 8 * 1_096)
        for n in 0..<9 { shard.store([UInt8(n)], entry(1_000)) }  // 9 × (1000 + 96) > 8 × 1096
        #expect(shard.evictions.size == 1 && shard.bytes <= 8 * 1_096)
        shard.store([100], entry(10, expiresAt: 50))
        #expect(shard.entry([100], epoch: 0, now: 49) != nil)
        #expect(shard.entry([100], epoch: 0, now: 50) == nil)
        #expect(shard.evictions.expired == 1)
        shard.store([101], entry(10, epoch: 7))
        #expect(shard.entry([101], epoch: 7, now: 0) != nil)
        #expect(shard.entry([101], epoch: 8, now: 0) == nil)
        #expect(shard.entry([101], epoch: 7, now: 0) == nil)  // gone, not hidden
        // The small entries needed room once more (the shard was full).
        #expect(shard.evictions.byReason.map(\.1) == [2, 1, 1])
    }

    @Test func aNewEntryIsTheLastTheHandReachesNotTheNext() {
        // 8 entries fill the shard; each later one needs one evicted. The newest must survive
        // the next eviction (a ring that filled holes with its newest entry evicted it next).
        var shard = ResponseCacheShard(maxBytes: 8 * 1_096)
        for n in 0..<8 { shard.store([UInt8(n)], entry(1_000)) }
        for n in 8..<40 {
            shard.store([UInt8(n)], entry(1_000))
            #expect(shard.entry([UInt8(n - 1)], epoch: 0, now: 0) != nil, "entry \(n - 1) was evicted right after it came")
            #expect(shard.entry([UInt8(n)], epoch: 0, now: 0) != nil)
        }
        // Second chance: an entry read since the hand passed stays while unread ones go.
        var clock = ResponseCacheShard(maxBytes: 8 * 1_096)
        for n in 0..<8 { clock.store([UInt8(n)], entry(1_000)) }
        _ = clock.entry([0], epoch: 0, now: 0)
        clock.store([8], entry(1_000))
        #expect(clock.entry([0], epoch: 0, now: 0) != nil && clock.entry([1], epoch: 0, now: 0) == nil)
    }

    @Test func theLoopsFrontChecksTheSameRulesAndEmptiesWhenFull() {
        let front = CacheFront()
        front.keep([1], entry(100, epoch: 7, expiresAt: 50), maxBytes: 8 * 1_096, now: 0)
        front.keep([2], entry(100), maxBytes: 8 * 1_096, now: 0)
        #expect(front.entry([1], epoch: 7, now: 10) != nil)
        #expect(front.entry([1], epoch: 8, now: 10) == nil)  // the head moved: gone
        #expect(front.entry([2], epoch: 8, now: 999) != nil)  // immutable
        #expect(front.entry([2], epoch: 8, now: 1_000) == nil)  // its TTL passed
        // Too big for the front: not kept. A front that fills is emptied.
        front.keep([3], entry(2_000), maxBytes: 8 * 1_096, now: 0)
        #expect(front.count == 0)
        for n in 0..<8 { front.keep([UInt8(10 + n)], entry(1_000), maxBytes: 8 * 1_096, now: 0) }
        #expect(front.count == 8)
        front.keep([99], entry(1_000), maxBytes: 8 * 1_096, now: 0)
        #expect(front.count == 1 && front.entry([99], epoch: 0, now: 0) != nil)
        // At most a second in the front, whatever the entry's own TTL: then the store is asked.
        front.keep([100], entry(10, expiresAt: .max), maxBytes: 8 * 1_096, now: 5)
        #expect(front.entry([100], epoch: 0, now: 5 + CacheFront.lifetime - 1) != nil)
        #expect(front.entry([100], epoch: 0, now: 5 + CacheFront.lifetime) == nil)
    }

    @Test func theRingStaysWholeThroughStoresReadsExpiriesAndHeadMoves() {
        var shard = ResponseCacheShard(maxBytes: 16 * 1_096)
        var random = SplitMix64(seed: 7)
        for step in 0..<20_000 {
            let key = [UInt8(random.next() % 64)]
            switch random.next() % 4 {
            case 0: shard.store(key, entry(Int(random.next() % 2_000), epoch: random.next() % 2 == 0 ? nil : 1, expiresAt: Int64(step + 500)))
            case 1: _ = shard.entry(key, epoch: 1, now: Int64(step))
            case 2: _ = shard.entry(key, epoch: 2, now: Int64(step))  // the head moved: epoch-1 entries go
            default: shard.store(key, entry(10))
            }
            #expect(shard.bytes <= shard.maxBytes)
        }
        // Every entry still held is found, and the bytes add up to what is held.
        var held = 0
        for byte in 0..<64 where shard.entry([UInt8(byte)], epoch: 1, now: 20_000) != nil { held += 1 }
        #expect(held == shard.count)
    }
}

/// The cache in the running gateway, against fake nodes on sockets.
@Suite struct ResponseCacheTests {
    static func yaml(networks: String = "", interval: Int = 50) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            health_check: {interval_ms: \(interval)}
            upstreams:
              - url: {NODE0}
        \(networks)
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000
        cache:
          enabled: true
        """
    }

    static func call(_ method: String, _ params: String = "[]", id: String = "1") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    }

    /// Waits (bounded) for a condition the health checker makes true.
    static func eventually(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }

    @Test func aRepeatedReadIsTheNodesBytesWithTheCallersID() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml())
        let key = try await harness.key()
        let first = try await harness.post(Self.call("eth_chainId", id: "1"), key: key)
        let second = try await harness.post(Self.call("eth_chainId", id: #""caller-b""#), key: key)
        #expect(first.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
        #expect(second.body == #"{"jsonrpc":"2.0","id":"caller-b","result":"0x1"}"#)
        #expect(node.requestCount == 1)
        let metrics = try await harness.metrics()
        #expect(metrics.contains(#"tollgate_cache_requests_total{network="ethereum",method="eth_chainId",result="hit"} 1"#))
        #expect(metrics.contains(#"tollgate_cache_requests_total{network="ethereum",method="eth_chainId",result="miss"} 1"#))
        // The bytes held are published with the health gauges (every 50 ms here).
        let deadline = ContinuousClock.now + .seconds(10)
        var held = 0.0
        while held == 0, ContinuousClock.now < deadline {
            let text = try await harness.metrics()
            held = text.split(separator: "\n").first { $0.hasPrefix("tollgate_cache_bytes ") }.flatMap { Double($0.split(separator: " ")[1]) } ?? 0
            if held == 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(held > 0)
        try await harness.stop()
        await node.stop()
    }

    @Test func plansMaySkipTheCacheAndAllowClientsToBypassIt() async throws {
        let node = try await FakeNode.start()
        let yaml = Self.yaml().replacingOccurrences(of: "plans:\n", with: """
            plans:
              off: {cu_per_second: 1000000, requests_per_second: 100000, cache: false}
              bypass: {cu_per_second: 1000000, requests_per_second: 100000, cache_bypass: true}

            """)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let off = try await harness.key(plan: "off")
        let bypass = try await harness.key(plan: "bypass")
        let big = try await harness.key()
        let noCache = [("Content-Type", "application/json"), ("Cache-Control", "max-age=0, no-cache")]
        _ = try await harness.post(Self.call("eth_chainId"), key: off)
        _ = try await harness.post(Self.call("eth_chainId"), key: off)
        #expect(node.requestCount == 2)  // a plan without the cache always goes upstream
        _ = try await harness.post(Self.call("eth_chainId"), key: bypass, headers: noCache)
        _ = try await harness.post(Self.call("eth_chainId"), key: bypass, headers: noCache)
        #expect(node.requestCount == 4)  // no-cache honoured for a plan that allows it
        _ = try await harness.post(Self.call("eth_chainId"), key: big)
        _ = try await harness.post(Self.call("eth_chainId"), key: big, headers: noCache)
        #expect(node.requestCount == 5)  // and ignored for one that does not
        try await harness.stop()
        await node.stop()
    }

    @Test func twoNetworksNeverShareAnEntry() async throws {
        let one = try await FakeNode.start()
        let two = try await FakeNode.start()
        two.setChainID("0x2")
        let harness = try await GatewayHarness.start(nodes: [one, two], yaml: Self.yaml(networks: """
              other:
                chain_id: 2
                upstreams:
                  - url: {NODE1}
            """))
        let key = try await harness.key()
        let a = try await harness.post(Self.call("eth_chainId"), key: key)
        let b = try await harness.post(Self.call("eth_chainId"), key: key, network: "other")
        #expect(a.body.contains(#""0x1""#) && b.body.contains(#""0x2""#))
        #expect(one.requestCount == 1 && two.requestCount == 1)
        try await harness.stop()
        await one.stop()
        await two.stop()
    }

    @Test func eth_blockNumberNeverGoesBackWhileNodesLag() async throws {
        let ahead = try await FakeNode.start()
        let behind = try await FakeNode.start()
        behind.setHead(0x1234 - 5)
        let harness = try await GatewayHarness.start(nodes: [ahead, behind], yaml: Self.yaml().replacingOccurrences(
            of: "      - url: {NODE0}", with: "      - url: {NODE0}\n      - url: {NODE1}"))
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await Self.eventually { board.chain.head == 0x1234 }
        var highest: UInt64 = 0
        for round in 0..<1000 {
            if round == 300 { ahead.setHead(0x1200) }  // the leader falls behind (a restart)
            if round == 600 { behind.setHead(0x1240) }  // and the other overtakes it
            let answer = try await harness.post(Self.call("eth_blockNumber", id: String(round)), key: key)
            let head = try #require(RPCResponseReader.quantity(RPCResponseReader.answers(ByteBuffer(string: answer.body))?.first?.result))
            #expect(head >= highest, "eth_blockNumber went back from \(highest) to \(head)")
            highest = max(highest, head)
        }
        try await Self.eventually { board.chain.head == 0x1240 }
        #expect(ahead.requestCount == 0 && behind.requestCount == 0)  // answered from the chain state
        try await harness.stop()
        await ahead.stop()
        await behind.stop()
    }

    @Test func readsAboutTheHeadSkipANodeBehindIt() async throws {
        let ahead = try await FakeNode.start()
        let behind = try await FakeNode.start()
        behind.setHead(0x1234 - 3)  // within max_block_lag (10): eligible for everything else
        let harness = try await GatewayHarness.start(nodes: [ahead, behind], yaml: Self.yaml().replacingOccurrences(
            of: "      - url: {NODE0}", with: "      - url: {NODE0}\n      - url: {NODE1}"))
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await Self.eventually { board.chain.head == 0x1234 && board.cells[1].head == 0x1234 - 3 }
        for round in 0..<30 {
            let answer = try await harness.post(Self.call("eth_getBalance", #"["0x\#(String(round, radix: 16))","latest"]"#), key: key)
            #expect(answer.status == 200)
        }
        #expect(ahead.requestCount == 30)
        #expect(behind.requestCount == 0)
        // At the head again, it takes them too once the health check has seen it.
        behind.setHead(0x1234)
        try await Self.eventually { board.cells[1].head == 0x1234 }
        for round in 30..<90 {
            _ = try await harness.post(Self.call("eth_getBalance", #"["0x\#(String(round, radix: 16))","latest"]"#), key: key)
        }
        #expect(behind.requestCount > 0)
        try await harness.stop()
        await ahead.stop()
        await behind.stop()
    }

    @Test func aNullReceiptIsNotKeptAndTheRealOneIsServedThenCached() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml())
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await Self.eventually { board.chain.finalized > 0 }
        let request = Self.call("eth_getTransactionReceipt", #"["0xfeed"]"#)
        node.record(request: request, response: #"{"jsonrpc":"2.0","id":1,"result":null}"#)
        #expect(try await harness.post(request, key: key).body.contains("null"))
        let mined = #"{"jsonrpc":"2.0","id":1,"result":{"blockNumber":"0x10","status":"0x1"}}"#
        node.record(request: request, response: mined)
        #expect(try await harness.post(request, key: key).body == mined)
        #expect(try await harness.post(request, key: key).body == mined)
        #expect(node.requestCount == 2)  // the null went upstream again; the mined receipt was kept
        try await harness.stop()
        await node.stop()
    }

    @Test func afterAReorgNoBlockAboveTheAncestorIsServedFromBeforeItAndFinalOnesStay() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml())
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await Self.eventually { board.chain.head == 0x1234 && board.chain.finalized == 0x1234 - 32 }
        func block(_ height: UInt64) -> String { Self.call("eth_getBlockByNumber", #"["0x\#(String(height, radix: 16))",false]"#) }
        func hash(_ body: String) -> String? { (body.jsonObject?["result"] as? [String: Any])?["hash"] as? String }
        func fromNode(_ height: UInt64) async throws -> String? {
            hash(try await TestHTTPClient.post(port: node.port, path: "/", body: block(height)).body)
        }
        let heights: [UInt64] = [0x1200, 0x1230, 0x1231, 0x1232, 0x1233, 0x1234]
        var before: [UInt64: String] = [:]
        for height in heights {
            before[height] = hash(try await harness.post(block(height), key: key).body)
            _ = try await harness.post(block(height), key: key)  // a hit
        }
        #expect(node.requestCount == heights.count)
        node.reorg(depth: 3)  // 0x1232 to 0x1234 get other hashes
        try await Self.eventually { board.chain.reorgs == 1 }
        let count = node.requestCount
        for height in heights {
            let served = hash(try await harness.post(block(height), key: key).body)
            #expect(served == (try await fromNode(height)), "block 0x\(String(height, radix: 16)) is the pre-reorg one")
            if height >= 0x1232 { #expect(served != before[height]) }
        }
        // The final block came from the cache; everything above finalized was asked again.
        #expect(node.requestCount - count == heights.count + (heights.count - 1))
        try await harness.stop()
        await node.stop()
    }

    @Test func aMethodsOwnTTLEndsItsEntriesAndEvictionsSayWhy() async throws {
        let node = try await FakeNode.start()
        let yaml = Self.yaml() + "\n  policies:\n    - {method: eth_chainId, ttl_ms: 5000}\n"
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await Self.eventually { board.chain.head == 0x1234 }
        let chainID = Self.call("eth_chainId")
        _ = try await harness.post(chainID, key: key)
        _ = try await harness.post(chainID, key: key)
        #expect(node.requestCount == 1)
        // Its 5 s pass (not the hour immutable answers keep otherwise): asked again. (5 s, not
        // less: the two calls above must fall inside it on a loaded machine; 2 s did not always,
        // in a CI rehearsal running the whole suite in parallel.)
        #expect(await TollgateTests.eventually(timeout: .seconds(15)) {
            _ = try await harness.post(chainID, key: key)
            return node.requestCount == 2
        })
        let balance = Self.call("eth_getBalance", #"["0xab","latest"]"#)
        _ = try await harness.post(balance, key: key)
        node.setHead(0x1235)
        try await Self.eventually { board.chain.head == 0x1235 }
        _ = try await harness.post(balance, key: key)
        #expect(await TollgateTests.eventually {
            let expired = try await harness.metric(#"tollgate_cache_evictions_total{reason="expired"}"#)
            let head = try await harness.metric(#"tollgate_cache_evictions_total{reason="head"}"#)
            return expired >= 1 && head == 1
        })
        try await harness.stop()
        await node.stop()
    }

    @Test func answersAboutTheHeadGoWhenTheHeadMovesOrReorgs() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml())
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await Self.eventually { board.chain.head == 0x1234 }
        let balance = Self.call("eth_getBalance", #"["0xab","latest"]"#)
        _ = try await harness.post(balance, key: key)
        _ = try await harness.post(balance, key: key)
        #expect(node.requestCount == 1)
        node.setHead(0x1235)
        try await Self.eventually { board.chain.head == 0x1235 }
        _ = try await harness.post(balance, key: key)
        #expect(node.requestCount == 2)
        _ = try await harness.post(balance, key: key)
        #expect(node.requestCount == 2)
        // The same height, another block: the epoch moves and the answer is asked again.
        node.reorg(depth: 1)
        try await Self.eventually { board.chain.reorgs == 1 }
        _ = try await harness.post(balance, key: key)
        #expect(node.requestCount == 3)
        let metrics = try await harness.metrics()
        #expect(metrics.contains(#"tollgate_reorgs_total{network="ethereum"} 1"#))
        try await harness.stop()
        await node.stop()
    }
}

@Suite struct SingleFlightTests {
    /// A gateway over a node that holds every request until released.
    static func heldGateway() async throws -> (FakeNode, GatewayHarness, String, SingleFlight) {
        let node = try await FakeNode.start(keepRequests: true)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: ResponseCacheTests.yaml())
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await ResponseCacheTests.eventually { board.chain.head > 0 }
        node.setHealthMode(.healthy)
        node.setMode(.held)
        return (node, harness, key, try #require(harness.app.gateway.singleFlight))
    }

    /// Posts every body at once; their answers by index.
    static func postAll(_ bodies: [String], harness: GatewayHarness, key: String) -> Task<[Int: TestResponse], any Error> {
        Task {
            try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                for (index, body) in bodies.enumerated() { group.addTask { (index, try await harness.post(body, key: key)) } }
                return try await group.reduce(into: [Int: TestResponse]()) { $0[$1.0] = $1.1 }
            }
        }
    }

    @Test func aBatchLeadsAllItsKeysOrJoinsThoseInFlightAndLeadsNone() {
        let flight = SingleFlight()
        let loop = EmbeddedEventLoop()
        let nobody = SingleFlight.Waiter(eventLoop: loop, deliver: { _ in })
        #expect(flight.lead([1], orWait: nobody))
        // [2, 1]: 1 is in flight, so the batch joins it and does not lead 2.
        var joinedAt: [Int] = []
        #expect(flight.enter(batch: [[2], [1]]) { joinedAt.append($0); return nobody } == [1])
        #expect(joinedAt == [1] && flight.waiterCount == 1)
        #expect(flight.lead([2], orWait: nobody))  // still free
        // [3, 3, 4]: nothing in flight, so it leads all (the repeated key once).
        #expect(flight.enter(batch: [[3], [3], [4]]) { _ in nobody } == nil)
        #expect(!flight.lead([3], orWait: nobody) && !flight.lead([4], orWait: nobody))
        #expect(flight.leadFree([[4], [5]]) == [[5]])
        let delivered = Mutex<[Bool]>([])
        let counting = SingleFlight.Waiter(eventLoop: loop, deliver: { answer in delivered.withLock { $0.append(answer != nil) } })
        #expect(!flight.lead([5], orWait: counting))
        flight.finish([5], nil)
        loop.run()
        #expect(delivered.withLock { $0 } == [false])
    }

    @Test func aHundredIdenticalMissesAtOnceGoUpstreamOnce() async throws {
        let (node, harness, key, flight) = try await Self.heldGateway()
        let calls = (0..<100).map { ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: String($0)) }
        let posted = Self.postAll(calls, harness: harness, key: key)
        // The leader is held at the node while the 99 others join it.
        try await ResponseCacheTests.eventually { node.heldCount == 1 && flight.waiterCount == 99 }
        node.release()
        let answers = try await posted.value
        #expect(node.requestCount == 1)
        for (index, answer) in answers {
            #expect(answer.status == 200)
            #expect(answer.body == #"{"jsonrpc":"2.0","id":\#(index),"result":"0x0"}"#)
        }
        try await harness.stop()
        await node.stop()
    }

    @Test func identicalBatchesAtOnceGoUpstreamOnceEachWithItsOwnIDs() async throws {
        let (node, harness, key, flight) = try await Self.heldGateway()
        let batches = (0..<20).map { n in
            "[" + ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: String(2 * n)) + ","
                + ResponseCacheTests.call("eth_getTransactionCount", #"["0xab","latest"]"#, id: #""b\#(n)""#) + "]"
        }
        let posted = Self.postAll(batches, harness: harness, key: key)
        // One batch leads both calls; the 19 others join it (two waiters each) and send nothing.
        try await ResponseCacheTests.eventually { node.heldCount == 1 && flight.waiterCount == 38 }
        node.release()
        let answers = try await posted.value
        #expect(node.requestCount == 1)
        for (n, answer) in answers {
            #expect(answer.status == 200)
            #expect(answer.body == #"[{"jsonrpc":"2.0","id":\#(2 * n),"result":"0x0"},{"jsonrpc":"2.0","id":"b\#(n)","result":"0x0"}]"#)
        }
        let metrics = try await harness.metrics()
        // Answers shared in flight are misses of the cache, not hits.
        #expect(metrics.contains(#"tollgate_cache_requests_total{network="ethereum",method="batch",result="miss"} 20"#))
        #expect(!metrics.contains(#"tollgate_cache_requests_total{network="ethereum",method="batch",result="hit"}"#))
        try await harness.stop()
        await node.stop()
    }

    @Test func singleCallsAndBatchesJoinEachOtherAndABatchSendsOnlyWhatNobodyHasInFlight() async throws {
        let (node, harness, key, flight) = try await Self.heldGateway()
        let balance = ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: "7")
        let code = ResponseCacheTests.call("eth_getCode", #"["0xab","latest"]"#, id: "8")
        // A single call leads the balance; a batch asking for it and for the code joins it,
        // and a single call for the code joins nobody (the waiting batch leads nothing).
        let single = Self.postAll([balance], harness: harness, key: key)
        try await ResponseCacheTests.eventually { node.heldCount == 1 }
        let batch = Self.postAll(["[" + balance.replacingOccurrences(of: #""id":7"#, with: #""id":"x""#) + "," + code + "]"], harness: harness, key: key)
        try await ResponseCacheTests.eventually { flight.waiterCount == 1 }
        #expect(node.heldCount == 1)
        node.release()
        #expect(try await single.value[0]?.body == #"{"jsonrpc":"2.0","id":7,"result":"0x0"}"#)
        let answer = try #require(try await batch.value[0])
        #expect(answer.body == #"[{"jsonrpc":"2.0","id":"x","result":"0x0"},{"jsonrpc":"2.0","id":8,"result":"0x0"}]"#)
        // The batch's own trip carried only the code (still as a batch).
        #expect(node.requestCount == 2)
        #expect(node.received.last?.body == "[" + code + "]")

        // Now a batch leads two calls, and single calls for either join it.
        node.resetReceived()
        node.setMode(.held)
        let nonce = ResponseCacheTests.call("eth_getTransactionCount", #"["0xcd","latest"]"#, id: "1")
        let storage = ResponseCacheTests.call("eth_getStorageAt", #"["0xcd","0x0","latest"]"#, id: "2")
        let leading = Self.postAll(["[" + nonce + "," + storage + "]"], harness: harness, key: key)
        try await ResponseCacheTests.eventually { node.heldCount == 1 }
        let singles = Self.postAll([nonce.replacingOccurrences(of: #""id":1"#, with: #""id":"s1""#), storage], harness: harness, key: key)
        try await ResponseCacheTests.eventually { flight.waiterCount == 2 }
        node.release()
        #expect(try await leading.value[0]?.body == #"[{"jsonrpc":"2.0","id":1,"result":"0x0"},{"jsonrpc":"2.0","id":2,"result":"0x0"}]"#)
        let answers = try await singles.value
        #expect(answers[0]?.body == #"{"jsonrpc":"2.0","id":"s1","result":"0x0"}"#)
        #expect(answers[1]?.body == #"{"jsonrpc":"2.0","id":2,"result":"0x0"}"#)
        #expect(node.requestCount == 1)
        try await harness.stop()
        await node.stop()
    }

    @Test func twoBatchesHoldingEachOthersCallsDoNotWaitOnEachOther() async throws {
        let (node, harness, key, flight) = try await Self.heldGateway()
        let a = ResponseCacheTests.call("eth_getBalance", #"["0x01","latest"]"#, id: "1")
        let b = ResponseCacheTests.call("eth_getBalance", #"["0x02","latest"]"#, id: "2")
        let both = Self.postAll(["[" + a + "," + b + "]", "[" + b + "," + a + "]"], harness: harness, key: key)
        // Whichever came first leads both calls; the other joins both and leads none.
        try await ResponseCacheTests.eventually { node.heldCount == 1 && flight.waiterCount == 2 }
        node.release()
        let answers = try await both.value
        #expect(answers[0]?.body == #"[{"jsonrpc":"2.0","id":1,"result":"0x0"},{"jsonrpc":"2.0","id":2,"result":"0x0"}]"#)
        #expect(answers[1]?.body == #"[{"jsonrpc":"2.0","id":2,"result":"0x0"},{"jsonrpc":"2.0","id":1,"result":"0x0"}]"#)
        #expect(node.requestCount == 1)
        try await harness.stop()
        await node.stop()
    }

    @Test func aBatchThatFailsSendsTheCallersWaitingOnItUpstreamThemselves() async throws {
        let (node, harness, key, flight) = try await Self.heldGateway()
        let balance = ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: "1")
        let leading = Self.postAll(["[" + balance + "," + ResponseCacheTests.call("eth_getCode", #"["0xab","latest"]"#, id: "2") + "]"],
            harness: harness, key: key)
        try await ResponseCacheTests.eventually { node.heldCount == 1 }
        let single = Self.postAll([balance], harness: harness, key: key)
        try await ResponseCacheTests.eventually { flight.waiterCount == 1 }
        // The node's answer to the batch is an error status; the waiter asks for itself.
        #expect(node.heldCount == 1)
        node.release(as: .status(500))
        _ = try await leading.value
        let answer = try #require(try await single.value[0])
        #expect(node.requestCount == 2)
        #expect(answer.status == 502)
        try await harness.stop()
        await node.stop()
    }

    @Test func aFailedLeaderSendsItsWaitersUpstreamThemselves() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: ResponseCacheTests.yaml())
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await ResponseCacheTests.eventually { board.chain.head > 0 }
        node.setHealthMode(.healthy)
        node.setMode(.slowStatus(.milliseconds(300), 500))  // the leader fails while the others wait
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<5 {
                group.addTask { try await harness.post(ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: String(index)), key: key).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        // Nobody got the leader's 502 second hand: each waiter asked for itself.
        #expect(statuses.allSatisfy { $0 == 502 })
        #expect(node.requestCount == 5)
        try await harness.stop()
        await node.stop()
    }
}
