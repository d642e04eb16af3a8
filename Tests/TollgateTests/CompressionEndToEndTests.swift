import CompressNIO
import Foundation
import NIOCore
import Testing
import TollgateTestSupport

/// Compressed answers through the running gateway: gzip toward clients that ask, the node's
/// own gzip passed on, zip bombs and broken codings from a node refused, gzip request bodies
/// limited by their inflated size, cached answers served from their stored gzip member.
@Suite struct CompressionEndToEndTests {
    static func yaml(node: String = "", network: String = "", plan: String = "", cache: Bool = false) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            health_check: {interval_ms: 50}
        \(network)
            upstreams:
              - url: {NODE0}
        \(node)
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000
        \(plan)
        cache:
          enabled: \(cache)
        """
    }

    static func call(_ method: String, _ params: String = "[]", id: String = "1") -> String {
        #"{"jsonrpc":"2.0","id":\#(id),"method":"\#(method)","params":\#(params)}"#
    }

    static func inflate(_ response: TestResponse) throws -> String {
        var bytes = ByteBuffer(bytes: response.bodyBytes)
        let algorithm: CompressionAlgorithm = response.header("Content-Encoding") == "deflate" ? .zlib() : .gzip()
        return String(buffer: try bytes.decompress(with: algorithm))
    }

    static let gzip = [("Content-Type", "application/json"), ("Accept-Encoding", "gzip")]

    @Test func aLargeAnswerGoesOutCompressedOnlyToClientsThatAsk() async throws {
        let node = try await FakeNode.start()
        node.setBlockPadding(4000)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml())
        let key = try await harness.key()
        let block = Self.call("eth_getBlockByNumber", #"["0x10",false]"#)

        let plain = try await harness.post(block, key: key)
        #expect(plain.status == 200)
        #expect(plain.header("Content-Encoding") == nil)
        #expect(plain.header("Vary") == "Accept-Encoding")
        #expect(plain.body.contains(String(repeating: "00", count: 4000)))

        let gzipped = try await harness.post(block, key: key, headers: Self.gzip)
        #expect(gzipped.status == 200)
        #expect(gzipped.header("Content-Encoding") == "gzip")
        #expect(gzipped.header("Vary") == "Accept-Encoding")
        #expect(gzipped.bodyBytes.count < plain.bodyBytes.count / 10)
        #expect(try Self.inflate(gzipped) == plain.body)

        let deflated = try await harness.post(block, key: key, headers: [("Content-Type", "application/json"), ("Accept-Encoding", "deflate")])
        #expect(deflated.header("Content-Encoding") == "deflate")
        #expect(try Self.inflate(deflated) == plain.body)

        // A small answer stays as it is, asked or not; so does one the client refuses gzip for.
        let small = try await harness.post(Self.call("eth_chainId"), key: key, headers: Self.gzip)
        #expect(small.header("Content-Encoding") == nil && small.header("Vary") == nil)
        #expect(small.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
        let refused = try await harness.post(block, key: key, headers: [("Content-Type", "application/json"), ("Accept-Encoding", "gzip;q=0")])
        #expect(refused.header("Content-Encoding") == nil && refused.body == plain.body)

        // Wire and decoded bytes by coding: gzip's wire bytes are the small ones.
        let wire = try await harness.metric(#"tollgate_response_bytes_total{network="ethereum",encoding="gzip"}"#)
        let decoded = try await harness.metric(#"tollgate_response_decoded_bytes_total{network="ethereum",encoding="gzip"}"#)
        #expect(wire == Double(gzipped.bodyBytes.count))
        #expect(decoded == Double(plain.bodyBytes.count))
        try await harness.stop()
        await node.stop()
    }

    @Test func aNodesGzipIsReadAndPassedOnWithoutCompressingAgain() async throws {
        let node = try await FakeNode.start()
        node.setBlockPadding(4000)
        node.setGzip(.whenAsked)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(node: "        compression: true"))
        let key = try await harness.key()
        let block = Self.call("eth_getBlockByNumber", #"["0x10",false]"#)
        let plain = try await harness.post(block, key: key)
        #expect(plain.status == 200 && plain.header("Content-Encoding") == nil)
        #expect(plain.body.hasPrefix(#"{"jsonrpc":"2.0","id":1,"result":{"number":"0x10""#))
        #expect(node.received.last?.header("Accept-Encoding") == "gzip")

        let gzipped = try await harness.post(block, key: key, headers: Self.gzip)
        #expect(gzipped.header("Content-Encoding") == "gzip")
        // The node's own bytes (compress-nio's default level), not Tollgate's level-1 output.
        var answer = ByteBuffer(string: plain.body)
        #expect(gzipped.bodyBytes == Array(buffer: try answer.compress(with: .gzip())))
        try await harness.stop()
        await node.stop()
    }

    @Test func aZipBombATruncatedStreamOrAnUnaskedCodingFromANodeIs502AndCounted() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(
            node: "        compression: true", network: "    max_response_bytes: 1048576\n    max_attempts: 1"))
        let key = try await harness.key()
        let cases: [(FakeNode.Gzip, String)] = [(.bomb(8 << 20), "too_large"), (.truncated, "corrupt"), (.brotli, "unsupported_coding")]
        for (mode, reason) in cases {
            node.setGzip(mode)
            let response = try await harness.post(Self.call("eth_getBalance", #"["0xab","latest"]"#, id: "5"), key: key)
            #expect(response.status == 502, "\(mode)")
            #expect(response.body.contains(#""id":5"#) && response.body.contains("-32603"), "\(response.body)")
            #expect(try await harness.metric(#"tollgate_upstream_undecodable_total{network="ethereum",reason="\#(reason)"}"#) == 1)
        }
        try await harness.stop()
        await node.stop()
    }

    @Test func aGzipRequestBodyIsInflatedAndLimitedByItsInflatedSize() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(plan: "    max_body_bytes: 10000"))
        let key = try await harness.key()
        func send(_ body: ByteBuffer, coding: String) async throws -> TestResponse {
            let client = try await TestHTTPClient.connect(port: harness.port)
            defer { Task { await client.close() } }
            var head = "POST /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            head += "Content-Encoding: \(coding)\r\nContent-Length: \(body.readableBytes)\r\n\r\n"
            try await client.send(raw: Array(head.utf8) + Array(buffer: body))
            return try #require(try await client.next())
        }
        var call = ByteBuffer(string: Self.call("eth_getBalance", #"["0xab","latest"]"#, id: "9"))
        let ok = try await send(try call.compress(with: .gzip()), coding: "gzip")
        #expect(ok.status == 200, "\(ok.body)")
        #expect(ok.body.contains(#""id":9"#))
        #expect(node.received.last?.body == Self.call("eth_getBalance", #"["0xab","latest"]"#, id: "9"))
        #expect(node.received.last?.header("Content-Encoding") == nil)
        var deflateCall = ByteBuffer(string: Self.call("eth_chainId", id: "10"))
        #expect(try await send(try deflateCall.compress(with: .zlib()), coding: "deflate").body == #"{"jsonrpc":"2.0","id":10,"result":"0x1"}"#)

        // 1 MB of params in about a kilobyte: refused at the plan's 10,000 bytes, never sent on.
        let before = node.requestCount
        var huge = ByteBuffer(string: Self.call("eth_call", "[\"" + String(repeating: "0", count: 1 << 20) + "\"]"))
        let bomb = try huge.compress(with: .gzip())
        #expect(bomb.readableBytes < 5_000)
        let refused = try await send(bomb, coding: "gzip")
        #expect(refused.status == 413)
        #expect(refused.body.contains("inflates past the plan's 10000 bytes"), "\(refused.body)")
        let corrupt = try await send(ByteBuffer(string: "not gzip at all"), coding: "gzip")
        #expect(corrupt.status == 400 && corrupt.body.contains("-32700"), "\(corrupt.body)")
        let brotli = try await send(ByteBuffer(string: "{}"), coding: "br")
        #expect(brotli.status == 415 && brotli.header("Accept-Encoding") == "gzip, deflate")
        #expect(node.requestCount == before)
        #expect(try await harness.metric(#"tollgate_request_bytes_total{network="ethereum",encoding="gzip"}"#) > 0)
        try await harness.stop()
        await node.stop()
    }

    @Test func cacheHitsAreServedFromTheStoredGzipMemberWithEachCallersID() async throws {
        let node = try await FakeNode.start()
        node.setBlockPadding(4000)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(cache: true))
        let key = try await harness.key()
        let board = try #require(harness.app.healthBoards["ethereum"])
        try await ResponseCacheTests.eventually { board.chain.finalized > 0x20 }
        let first = try await harness.post(Self.call("eth_getBlockByNumber", #"["0x10",false]"#, id: "1"), key: key)
        #expect(first.status == 200)
        #expect(node.requestCount == 1)
        for id in [#""alpha""#, "77", "1"] {
            let hit = try await harness.post(Self.call("eth_getBlockByNumber", #"["0x10",false]"#, id: id), key: key, headers: Self.gzip)
            #expect(hit.header("Content-Encoding") == "gzip")
            let expected = first.body.replacingOccurrences(of: #""id":1,"#, with: #""id":\#(id),"#)
            #expect(try Self.inflate(hit) == expected)
        }
        #expect(node.requestCount == 1)
        #expect(try await harness.metric(#"tollgate_cache_requests_total{network="ethereum",method="eth_getBlockByNumber",result="hit"}"#) == 3)

        // A miss for a gzip client is sent the member the cache just made (compressed once),
        // byte for byte what the next hit with the same id gets; compressing the answer again
        // as a whole stream would give other bytes.
        let missCall = Self.call("eth_getBlockByNumber", #"["0x11",false]"#, id: "5")
        let miss = try await harness.post(missCall, key: key, headers: Self.gzip)
        #expect(node.requestCount == 2)
        #expect(miss.header("Content-Encoding") == "gzip")
        #expect(try Self.inflate(miss).hasPrefix(#"{"jsonrpc":"2.0","id":5,"result":{"number":"0x11""#))
        let again = try await harness.post(missCall, key: key, headers: Self.gzip)
        #expect(node.requestCount == 2)
        #expect(again.bodyBytes == miss.bodyBytes)
        try await harness.stop()
        await node.stop()
    }

    @Test func curlAndWeb3pyGetTheSameAnswersWithAndWithoutCompression() async throws {
        let node = try await FakeNode.start()
        node.setBlockPadding(4000)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml())
        let key = try await harness.key()
        let url = "http://127.0.0.1:\(harness.port)/v1/ethereum/\(key)"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("compression-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let body = Self.call("eth_getBlockByNumber", #"["0x10",false]"#)
        let curl = "curl -sS -X POST -H 'Content-Type: application/json' -d '\(body)' '\(url)'"
        try await ClickHouseServer.script(["-c", "\(curl) --compressed -D \(dir)/gz.head -o \(dir)/gz.body && \(curl) -D \(dir)/plain.head -o \(dir)/plain.body"])
        let gzHead = try String(contentsOfFile: "\(dir)/gz.head", encoding: .utf8).lowercased()
        let plainHead = try String(contentsOfFile: "\(dir)/plain.head", encoding: .utf8).lowercased()
        #expect(gzHead.contains("content-encoding: gzip"))
        #expect(!plainHead.contains("content-encoding"))
        let gzBody = try String(contentsOfFile: "\(dir)/gz.body", encoding: .utf8)
        #expect(gzBody == (try String(contentsOfFile: "\(dir)/plain.body", encoding: .utf8)))
        #expect(gzBody.contains(String(repeating: "00", count: 4000)))

        // web3.py (requests asks for gzip by default), and the same through a session that does not.
        let script = TollgateProcess.root + "/Tests/python/web3_block.py"
        try await ClickHouseServer.script(["-c", "\(Web3SubscriptionTests.python) \(script) \(url) \(node.url) > \(dir)/web3.out"])
        let out = try String(contentsOfFile: "\(dir)/web3.out", encoding: .utf8)
        #expect(out.contains("same with gzip") && out.contains("same without gzip"), "\(out)")
        #expect(try await harness.metric(#"tollgate_response_bytes_total{network="ethereum",encoding="gzip"}"#) > 0)
        try await harness.stop()
        await node.stop()
    }
}
