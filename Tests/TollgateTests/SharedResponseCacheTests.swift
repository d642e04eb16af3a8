import Foundation
import NIOCore
import Testing
import TollgateApp
import TollgateCore
import TollgateJSONRPC
@testable import TollgateRedis
import TollgateTestSupport

/// The L2 response cache and the shared chain facts, with two replicas (each with its own
/// node) on one real Redis: one fills, the other hits; heads and reorgs travel between them;
/// Redis killed leaves each replica its own cache and no 5xx.
@Suite(.serialized) struct SharedResponseCacheTests {
    struct Replicas: Sendable {
        let first: GatewayHarness
        let second: GatewayHarness
        let nodeA: FakeNode
        let nodeB: FakeNode
        let redis: RedisServers
        let key: String
    }

    static func yaml(redisPort: Int) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            health_check: {interval_ms: 50}
            upstreams:
              - url: {NODE0}
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000
        cache:
          enabled: true
          redis: true
          redis_timeout_ms: 2000
          head_sync_ms: 50
        redis:
          mode: standalone
          addresses: ["127.0.0.1:\(redisPort)"]
          shared_limits: false
        """
    }

    func withTwoReplicas(
        heads: (UInt64, UInt64) = (0x1234, 0x1234), redisTimeoutMillis: Int = 2000, _ body: (Replicas) async throws -> Void
    ) async throws {
        let redis = try await RedisServers.make(ports: 1)
        try await redis.start()
        defer { redis.destroy() }
        let nodeA = try await FakeNode.start()
        let nodeB = try await FakeNode.start()
        nodeA.setHead(heads.0)
        nodeB.setHead(heads.1)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        let yaml = Self.yaml(redisPort: redis.base).replacingOccurrences(of: "redis_timeout_ms: 2000", with: "redis_timeout_ms: \(redisTimeoutMillis)")
        let first = try await GatewayHarness.start(nodes: [nodeA], yaml: yaml, directory: directory)
        let second = try await GatewayHarness.start(nodes: [nodeB], yaml: yaml, directory: directory)
        do {
            let key = try await first.key()
            for harness in [first, second] {
                let board = try #require(harness.app.healthBoards["ethereum"])
                #expect(await eventually { board.chain.head > 0 && board.chain.finalized > 0 })
            }
            try await body(Replicas(first: first, second: second, nodeA: nodeA, nodeB: nodeB, redis: redis, key: key))
        } catch {
            Issue.record(error)
        }
        try await first.stop()
        try await second.stop()
        await nodeA.stop()
        await nodeB.stop()
    }

    static let stored = #"tollgate_cache_shared_total{result="store"}"#
    static let sharedHits = #"tollgate_cache_shared_total{result="hit"}"#

    @Test func oneReplicaFillsTheOtherHitsWithTheCallersID() async throws {
        try await withTwoReplicas { r in
            // Immutable: the chain id.
            let a = try await r.first.post(ResponseCacheTests.call("eth_chainId", id: "1"), key: r.key)
            #expect(a.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
            #expect(await eventually { try await r.first.metric(Self.stored) == 1 })
            let b = try await r.second.post(ResponseCacheTests.call("eth_chainId", id: #""b""#), key: r.key)
            #expect(b.body == #"{"jsonrpc":"2.0","id":"b","result":"0x1"}"#)

            // Until the next head: a balance at latest, both replicas at the same head.
            let balance = ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: "2")
            #expect(try await r.first.post(balance, key: r.key).status == 200)
            #expect(await eventually { try await r.first.metric(Self.stored) == 2 })
            #expect(try await r.second.post(balance, key: r.key).body == #"{"jsonrpc":"2.0","id":2,"result":"0x0"}"#)

            // A large final block: deflated in Redis, the same bytes out.
            let hashes = (0..<300).map { #""0x\#(String(repeating: String($0 % 10), count: 64))""# }.joined(separator: ",")
            let block = #"{"jsonrpc":"2.0","id":3,"result":{"number":"0x10","transactions":[\#(hashes)]}}"#
            let blockCall = ResponseCacheTests.call("eth_getBlockByNumber", #"["0x10",false]"#, id: "3")
            r.nodeA.record(request: blockCall, response: block)
            #expect(try await r.first.post(blockCall, key: r.key).body == block)
            #expect(await eventually { try await r.first.metric(Self.stored) == 3 })
            #expect(try await r.second.post(blockCall, key: r.key).body == block)

            #expect(r.nodeA.requestCount == 3)
            #expect(r.nodeB.requestCount == 0)  // every answer came from the other replica
            #expect(try await r.second.metric(Self.sharedHits) == 3)
            let hits = try await r.second.metric(#"tollgate_cache_requests_total{network="ethereum",method="eth_getBlockByNumber",result="hit"}"#)
            #expect(hits == 1)

            // What Redis holds: the large answer is the deflated one.
            let client = RedisClient(configuration: .init(mode: .standalone, addresses: [r.redis.node(0)]))
            let keys = try await client.execute(["KEYS", "tollgate:cache:ethereum:*"]).elements ?? []
            #expect(keys.count == 3)
            var flags: [UInt8] = []
            for key in keys {
                guard case .bulkString(let value?) = try await client.execute(["GET", .string(key.string ?? "")]) else { continue }
                flags.append(value.getInteger(at: 1, as: UInt8.self) ?? 0)
                if value.getInteger(at: 1, as: UInt8.self)! & 1 == 1 { #expect(value.readableBytes < block.utf8.count / 4) }
            }
            #expect(flags.sorted() == [0, 1, 2])  // immutable, immutable deflated, bound to the head
            await client.close()
        }
    }

    @Test func aBatchAsksRedisForItsMissesAndSendsTheNodeOnlyTheRest() async throws {
        try await withTwoReplicas { r in
            let filling = "[" + ResponseCacheTests.call("eth_chainId", id: "1") + ","
                + ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: "2") + "]"
            #expect(try await r.first.post(filling, key: r.key).status == 200)
            #expect(await eventually { try await r.first.metric(Self.stored) == 2 })
            // The other replica holds neither in-process: both come from Redis, with this
            // batch's ids; only the third call goes to its node.
            let asking = "[" + ResponseCacheTests.call("eth_chainId", id: #""x""#) + ","
                + ResponseCacheTests.call("eth_getBalance", #"["0xab","latest"]"#, id: #""y""#) + ","
                + ResponseCacheTests.call("eth_getCode", #"["0xab","latest"]"#, id: "3") + "]"
            r.nodeB.resetReceived()
            let answer = try await r.second.post(asking, key: r.key)
            let items = try #require(answer.body.json as? [[String: Any]])
            #expect(items.count == 3)
            #expect(items.first { $0["id"] as? String == "x" }?["result"] as? String == "0x1")
            #expect(items.first { $0["id"] as? String == "y" }?["result"] as? String == "0x0")
            #expect(items.first { $0["id"] as? Int == 3 } != nil)
            #expect(try await r.second.metric(Self.sharedHits) == 2)
            let forwarded = r.nodeB.received.map(\.body)
            #expect(forwarded.count == 1)
            #expect(forwarded.first?.contains("eth_getCode") == true && forwarded.first?.contains("eth_chainId") == false)
            // Asked again, the two adopted answers are in-process hits now.
            r.nodeB.resetReceived()
            #expect(try await r.second.post(asking, key: r.key).status == 200)
            #expect(r.nodeB.received.allSatisfy { !$0.body.contains("eth_chainId") && !$0.body.contains("eth_getBalance") })
            #expect(try await r.second.metric(Self.sharedHits) == 2)
        }
    }

    @Test func identicalMissesAskRedisOnceAndShareItsAnswer() async throws {
        try await withTwoReplicas { r in
            let balance = { @Sendable (id: Int) in ResponseCacheTests.call("eth_getBalance", #"["0x77","latest"]"#, id: String(id)) }
            #expect(try await r.first.post(balance(0), key: r.key).status == 200)
            #expect(await eventually { try await r.first.metric(Self.stored) == 1 })
            let bodies = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for id in 1...50 { group.addTask { (id, try await r.second.post(balance(id), key: r.key).body) } }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
            for id in 1...50 { #expect(bodies[id] == #"{"jsonrpc":"2.0","id":\#(id),"result":"0x0"}"#) }
            #expect(r.nodeB.requestCount == 0)
            // The leader asked Redis; the others waited on it or hit the in-process copy.
            #expect(try await r.second.metric(Self.sharedHits) == 1)
            #expect(try await r.second.metric(#"tollgate_cache_shared_total{result="miss"}"#) == 0)
        }
    }

    @Test func anEntryOfAnotherHeadIsNotServed() async throws {
        try await withTwoReplicas { r in
            let balance = ResponseCacheTests.call("eth_getBalance", #"["0xcd","latest"]"#)
            #expect(try await r.first.post(balance, key: r.key).status == 200)
            #expect(await eventually { try await r.first.metric(Self.stored) == 1 })
            // The head moves on the second replica's node before it asks: the entry is about the old one.
            r.nodeB.setHead(0x1235)
            let board = try #require(r.second.app.healthBoards["ethereum"])
            #expect(await eventually { board.chain.head == 0x1235 })
            #expect(try await r.second.post(balance, key: r.key).status == 200)
            #expect(r.nodeB.requestCount == 1)
            let method = #"network="ethereum",method="eth_getBalance""#
            #expect(try await r.second.metric("tollgate_cache_requests_total{\(method),result=\"miss\"}") == 1)
            #expect(try await r.second.metric("tollgate_cache_requests_total{\(method),result=\"hit\"}") == 0)
        }
    }

    @Test func aReorgOneReplicaSeesDropsTheOthersHeadBoundEntries() async throws {
        try await withTwoReplicas { r in
            let board = try #require(r.second.app.healthBoards["ethereum"])
            let balance = ResponseCacheTests.call("eth_getBalance", #"["0xef","latest"]"#)
            #expect(try await r.second.post(balance, key: r.key).status == 200)
            #expect(try await r.second.post(balance, key: r.key).status == 200)
            #expect(r.nodeB.requestCount == 1)  // the second was an in-process hit
            let epoch = board.chain.epoch
            r.nodeA.reorg(depth: 1)
            let firstBoard = try #require(r.first.app.healthBoards["ethereum"])
            #expect(await eventually { firstBoard.chain.reorgs == 1 })
            // Announced on Redis: the second replica's head-bound entries go, though its own node never reorged.
            #expect(await eventually { board.chain.epoch > epoch })
            #expect(board.chain.reorgs == 0 && board.chain.head == 0x1234)
        }
    }

    @Test func eth_blockNumberNeverGoesBackAcrossReplicas() async throws {
        try await withTwoReplicas(heads: (0x1234, 0x1234 - 5)) { r in
            let board = try #require(r.second.app.healthBoards["ethereum"])
            // The lagging replica takes the other's head through Redis, and both answer it from
            // the instant Redis named.
            let firstBoard = try #require(r.first.app.healthBoards["ethereum"])
            #expect(await eventually {
                board.chain.served(now: MonotonicClock.now()) == 0x1234 && firstBoard.chain.served(now: MonotonicClock.now()) == 0x1234
            })
            // A client alternating between the replicas while the head moves on one of them.
            var highest: UInt64 = 0
            var seen: [UInt64: Int] = [:]
            var round = 0
            while round < 5_000, seen[0x1236, default: 0] < 100 {
                if round == 20 { r.nodeA.setHead(0x1236) }
                let replica = round % 2 == 0 ? r.first : r.second
                let answer = try await replica.post(ResponseCacheTests.call("eth_blockNumber", id: String(round)), key: r.key)
                let head = try #require(RPCResponseReader.quantity(RPCResponseReader.answers(ByteBuffer(string: answer.body))?.first?.result))
                #expect(head >= highest, "eth_blockNumber went back from \(highest) to \(head) (round \(round))")
                highest = max(highest, head)
                seen[head, default: 0] += 1
                round += 1
            }
            #expect(seen[0x1234, default: 0] >= 20 && seen[0x1236, default: 0] == 100)
            #expect(await eventually { board.chain.head == 0x1236 })
        }
    }

    @Test func redisKilledLeavesEachReplicaItsOwnCacheAndNo5xx() async throws {
        try await withTwoReplicas { r in
            let chainID = ResponseCacheTests.call("eth_chainId")
            #expect(try await r.first.post(chainID, key: r.key).status == 200)
            #expect(await eventually { try await r.first.metric(Self.stored) == 1 })
            try await r.redis.kill(0)
            var statuses: [Int: Int] = [:]
            for round in 0..<100 {
                let replica = round % 2 == 0 ? r.first : r.second
                let call = round % 4 < 2 ? chainID : ResponseCacheTests.call("eth_getBalance", #"["0x\#(String(round, radix: 16))","latest"]"#)
                statuses[try await replica.post(call, key: r.key).status, default: 0] += 1
            }
            #expect(statuses == [200: 100])
            // The first replica kept answering the chain id itself; new reads went to the nodes.
            #expect(r.nodeA.requestCount == 1 + 25)
            #expect(r.nodeB.requestCount == 1 + 25)  // its one chain id miss, then its in-process hits
            #expect(try await r.second.metric(#"tollgate_cache_shared_total{result="error"}"#) >= 1)
        }
    }

    @Test func aPausedRedisCostsHitsNotAnswersAndIsUsedAgainOnceBack() async throws {
        try await withTwoReplicas(redisTimeoutMillis: 100) { r in
            let read = { @Sendable (n: Int) in ResponseCacheTests.call("eth_getBalance", #"["0x\#(String(n, radix: 16))","latest"]"#) }
            #expect(try await r.first.post(read(1), key: r.key).status == 200)
            #expect(await eventually { try await r.first.metric(Self.stored) == 1 })
            try r.redis.pause()
            var statuses: [Int: Int] = [:]
            for n in 100..<120 { statuses[try await r.first.post(read(n), key: r.key).status, default: 0] += 1 }
            try r.redis.pause(resume: true)
            #expect(statuses == [200: 20])
            #expect(r.nodeA.requestCount == 21)  // every miss went to the node
            #expect(try await r.first.metric(#"tollgate_cache_shared_total{result="error"}"#) >= 1)
            // Back: a probe finds it, and answers are written there again.
            #expect(await eventually {
                _ = try await r.first.post(read(Int.random(in: 1_000...1_000_000)), key: r.key)
                return try await r.first.metric(Self.stored) > 1
            })
        }
    }
}
