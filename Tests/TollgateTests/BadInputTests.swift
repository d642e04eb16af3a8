import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// Malformed and hostile requests: each gets the design note's status and JSON-RPC error, a
/// request ID, and the server keeps serving.
@Suite struct BadInputTests {
    /// Keys made for the run: one per plan, and two the store refuses.
    struct Keys: Sendable {
        var free: String
        var big: String
        var revoked: String
        var expired: String
    }

    struct Case: Sendable {
        var name: String
        var bytes: @Sendable (Keys) -> [UInt8]
        var status: Int
        /// Expected JSON-RPC error code (first item for batch answers); nil: not checked.
        var code: Int?
    }

    static func post(_ path: String, _ body: String, contentType: String? = "application/json", extra: [(String, String)] = []) -> [UInt8] {
        var headers = extra
        if let contentType { headers.append(("Content-Type", contentType)) }
        return TestHTTPClient.requestBytes(path: path, headers: headers, body: Array(body.utf8))
    }

    static let ok = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#

    static let cases: [Case] = [
        Case(name: "not JSON", bytes: { k in post("/v1/ethereum/\(k.big)", "hello") }, status: 400, code: -32700),
        Case(name: "truncated JSON", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"jsonrpc":"2.0","id":1,"meth"#) }, status: 400, code: -32700),
        Case(name: "empty body", bytes: { k in post("/v1/ethereum/\(k.big)", "") }, status: 400, code: -32700),
        Case(name: "trailing garbage", bytes: { k in post("/v1/ethereum/\(k.big)", ok + " xyz") }, status: 400, code: -32700),
        Case(name: "single quotes", bytes: { k in post("/v1/ethereum/\(k.big)", "{'jsonrpc':'2.0'}") }, status: 400, code: -32700),
        Case(name: "1 MB of nesting", bytes: { k in post("/v1/ethereum/\(k.big)", String(repeating: "[", count: 1_000_000)) }, status: 400, code: -32600),
        Case(name: "nesting in params", bytes: { keys in
            post("/v1/ethereum/\(keys.big)", #"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":"# + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}")
        }, status: 400, code: -32600),
        Case(name: "empty batch", bytes: { k in post("/v1/ethereum/\(k.big)", "[]") }, status: 400, code: -32600),
        Case(name: "batch of numbers", bytes: { k in post("/v1/ethereum/\(k.big)", "[1,2,3]") }, status: 400, code: -32600),
        Case(name: "bare number", bytes: { k in post("/v1/ethereum/\(k.big)", "42") }, status: 400, code: -32600),
        Case(name: "null", bytes: { k in post("/v1/ethereum/\(k.big)", "null") }, status: 400, code: -32600),
        Case(name: "wrong jsonrpc", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"jsonrpc":"1.0","id":1,"method":"eth_blockNumber"}"#) }, status: 400, code: -32600),
        Case(name: "missing jsonrpc", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"id":1,"method":"eth_blockNumber"}"#) }, status: 400, code: -32600),
        Case(name: "missing method", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"jsonrpc":"2.0","id":1}"#) }, status: 400, code: -32600),
        Case(name: "numeric method", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"jsonrpc":"2.0","id":1,"method":7}"#) }, status: 400, code: -32600),
        Case(name: "method not UTF-8", bytes: { keys in
            TestHTTPClient.requestBytes(path: "/v1/ethereum/\(keys.big)", body: Array(#"{"jsonrpc":"2.0","id":1,"method":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8))
        }, status: 400, code: -32600),
        Case(name: "params a string", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":"x"}"#) }, status: 400, code: -32600),
        Case(name: "id an object", bytes: { k in post("/v1/ethereum/\(k.big)", #"{"jsonrpc":"2.0","id":{"a":1},"method":"eth_call"}"#) }, status: 400, code: -32600),
        Case(name: "body over plan limit", bytes: { keys in
            post("/v1/ethereum/\(keys.free)", #"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[""# + String(repeating: "a", count: 300_000) + #""]}"#)
        }, status: 413, code: -32600),
        Case(name: "body over server cap", bytes: { k in post("/v1/ethereum/\(k.big)", String(repeating: " ", count: 6 << 20)) }, status: 413, code: -32600),
        Case(name: "batch over plan limit", bytes: { keys in
            post("/v1/ethereum/\(keys.free)", "[" + Array(repeating: ok, count: 101).joined(separator: ",") + "]")
        }, status: 413, code: -32600),
        Case(name: "denied method", bytes: { k in post("/v1/ethereum/\(k.free)", #"{"jsonrpc":"2.0","id":9,"method":"eth_sendRawTransaction","params":["0x00"]}"#) }, status: 403, code: -32601),
        Case(name: "denied glob", bytes: { k in post("/v1/ethereum/\(k.free)", #"{"jsonrpc":"2.0","id":9,"method":"debug_traceCall","params":[]}"#) }, status: 403, code: -32601),
        Case(name: "batch all denied", bytes: { keys in
            post("/v1/ethereum/\(keys.free)", #"[{"jsonrpc":"2.0","id":1,"method":"trace_block"},{"jsonrpc":"2.0","id":2,"method":"debug_x"}]"#)
        }, status: 200, code: -32601),
        Case(name: "huge header", bytes: { k in post("/v1/ethereum/\(k.big)", ok, extra: [("X-Junk", String(repeating: "j", count: 200_000))]) }, status: 431, code: -32600),
        Case(name: "malformed request line", bytes: { _ in Array("GARBAGE\r\n\r\n".utf8) }, status: 400, code: -32600),
        Case(name: "bad chunked encoding", bytes: { keys in
            Array("POST /v1/ethereum/\(keys.big) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n".utf8)
        }, status: 400, code: -32600),
        Case(name: "malformed key", bytes: { _ in post("/v1/ethereum/abc", ok) }, status: 401, code: -32001),
        Case(name: "overlong key", bytes: { _ in post("/v1/ethereum/tg_" + String(repeating: "a", count: 2000), ok) }, status: 401, code: -32001),
        Case(name: "unknown key", bytes: { _ in post("/v1/ethereum/tg_" + String(repeating: "Z", count: 43), ok) }, status: 401, code: -32001),
        Case(name: "missing key", bytes: { _ in post("/v1/ethereum", ok) }, status: 401, code: -32001),
        Case(name: "basic auth is not a key", bytes: { _ in post("/v1/ethereum", ok, extra: [("Authorization", "Basic dXNlcjpwYXNz")]) }, status: 401, code: -32001),
        Case(name: "unknown network", bytes: { k in post("/v1/mars/\(k.big)", ok) }, status: 404, code: -32600),
        Case(name: "unknown route", bytes: { _ in post("/v2/whatever", ok) }, status: 404, code: -32600),
        Case(name: "wrong content type", bytes: { k in post("/v1/ethereum/\(k.big)", ok, contentType: "text/plain") }, status: 415, code: -32600),
        Case(name: "GET on the RPC route", bytes: { k in TestHTTPClient.requestBytes(method: "GET", path: "/v1/ethereum/\(k.big)") }, status: 405, code: -32600),
        Case(name: "revoked key", bytes: { k in post("/v1/ethereum/" + k.revoked, ok) }, status: 403, code: -32002),
        Case(name: "expired key", bytes: { k in post("/v1/ethereum/" + k.expired, ok) }, status: 403, code: -32002),
    ]


    @Test func eachGetsItsStatusAndErrorAndTheServerKeepsServing() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let free = try await harness.key(plan: "free")
        let big = try await harness.key(plan: "big")
        let revoked = try await harness.key()
        _ = try await harness.app.keyStore.revoke(prefix: String(revoked.prefix(11)))
        let keys = Keys(free: free, big: big, revoked: revoked, expired: try await harness.key { $0.expiresAt = 1_000 })
        #expect(Self.cases.count >= 30)

        for testCase in Self.cases {
            let client = try await TestHTTPClient.connect(port: harness.port)
            try await client.send(raw: testCase.bytes(keys))
            guard let response = try await client.next() else {
                Issue.record("\(testCase.name): connection closed without an answer")
                continue
            }
            #expect(response.status == testCase.status, "\(testCase.name): status \(response.status), body \(response.body.prefix(200))")
            #expect(response.header("Content-Type") == "application/json", "\(testCase.name)")
            let json = response.body.json
            let first = (json as? [String: Any]) ?? (json as? [[String: Any]])?.first
            #expect(first?["jsonrpc"] as? String == "2.0", "\(testCase.name): not JSON-RPC: \(response.body.prefix(200))")
            if let code = testCase.code {
                #expect(first?.errorCode == code, "\(testCase.name): code \(String(describing: first?.errorCode))")
            }
            // Requests the HTTP parser refused never reached the pipeline that assigns IDs.
            if !["huge header", "malformed request line", "bad chunked encoding"].contains(testCase.name) {
                #expect(response.header("X-Request-ID") != nil, "\(testCase.name): no request ID")
            }
            await client.close()
        }

        // Still serving, on a fresh connection and with pipelining.
        let response = try await harness.post(Self.ok, key: big)
        #expect(response.status == 200)
        #expect(response.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1234"}"#)
        // No refused request reached the node.
        #expect(node.requestCount == 1)
        try await harness.stop()
        await node.stop()
    }

    @Test func idEchoedInErrorsAndBatchItemsAnsweredInPlace() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let free = try await harness.key(plan: "free")
        let single = try await harness.post(#"{"jsonrpc":"2.0","id":"abc-7","method":"eth_sendRawTransaction","params":["0x00"]}"#, key: free)
        #expect(single.body.jsonObject?["id"] as? String == "abc-7")
        // Refused after authentication: the limits are still reported, and nothing was charged.
        #expect(single.header("RateLimit-Limit") == "500")
        #expect(single.header("RateLimit-Remaining") == "500")
        let batch = try await harness.post(
            #"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":2,"method":"debug_x"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"},"x"]"#,
            key: free)
        #expect(batch.status == 200)
        let items = try #require(batch.body.jsonArray)
        #expect(items.count == 4)
        let byID = Dictionary(items.compactMap { item in (item["id"] as? Int).map { ($0, item) } }, uniquingKeysWith: { a, _ in a })
        #expect(byID[1]?["result"] as? String == "0x1234")
        #expect(byID[2]?.errorCode == -32601)
        #expect(byID[3]?["result"] as? String == "0x1")
        #expect(items.contains { $0["id"] is NSNull && $0.errorCode == -32600 })
        // Only the allowed items went upstream, as one batch.
        #expect(node.received.last?.body == #"[{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]"#)
        try await harness.stop()
        await node.stop()
    }
}
