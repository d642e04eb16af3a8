import NIOCore
import Testing
@testable import TollgateJSONRPC

@Suite struct RPCEnvelopeReaderTests {
    func read(_ text: String, maxDepth: Int = 128) -> Result<RPCEnvelope, RPCEnvelopeError> {
        RPCEnvelopeReader.read(ByteBuffer(string: text), maxDepth: maxDepth)
    }

    func call(_ text: String) -> RPCCall? {
        guard case .success(.single(.call(let call))) = read(text) else { return nil }
        return call
    }

    func slice(_ text: String, _ range: Range<Int>?) -> String? {
        range.map { String(decoding: Array(text.utf8)[$0], as: UTF8.self) }
    }

    @Test func readsMethodAndRawIDWithoutTouchingParams() {
        let body = #"{"jsonrpc":"2.0","id":"abc","method":"eth_call","params":[{"to":"0x1"},"latest"]}"#
        let parsed = call(body)
        #expect(parsed?.method == "eth_call")
        #expect(slice(body, parsed?.id) == #""abc""#)
        #expect(parsed?.span == 0..<body.utf8.count)
    }

    @Test func keepsNumericIDBytesExactly() {
        let body = #"{ "id" : 1.50e+3 , "method":"eth_blockNumber","jsonrpc":"2.0"}"#
        #expect(slice(body, call(body)?.id) == "1.50e+3")
    }

    @Test func notificationHasNoID() {
        let parsed = call(#"{"jsonrpc":"2.0","method":"eth_subscribe"}"#)
        #expect(parsed != nil)
        #expect(parsed?.id == nil)
    }

    /// ASCII names take a fast path; others are still read (and refused when not UTF-8).
    @Test func readsLongASCIIAndNonASCIIMethodNamesAndRefusesInvalidUTF8() {
        #expect(call(#"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByBlockNumberAndIndex"}"#)?.method
            == "eth_getTransactionByBlockNumberAndIndex")
        #expect(call(#"{"jsonrpc":"2.0","id":1,"method":"méthode_ü"}"#)?.method == "méthode_ü")
        let invalid = Array(#"{"jsonrpc":"2.0","id":1,"method":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        guard case .success(.single(.invalid(_, let reason))) = RPCEnvelopeReader.read(ByteBuffer(bytes: invalid), maxDepth: 128) else {
            Issue.record("invalid UTF-8 in a method name was not refused")
            return
        }
        #expect(reason.contains("UTF-8"))
    }

    @Test func decodesEscapedMethod() {
        #expect(call(#"{"jsonrpc":"2.0","id":1,"method":"eth_\u0063hainId"}"#)?.method == "eth_chainId")
    }

    @Test func batchKeepsItemOrderAndSpans() throws {
        let body = #"[{"jsonrpc":"2.0","id":1,"method":"a"}, 7, {"jsonrpc":"2.0","id":2,"method":"b"}]"#
        guard case .success(.batch(let items)) = read(body) else { Issue.record("not a batch"); return }
        #expect(items.count == 3)
        guard case .call(let first) = items[0], case .invalid = items[1], case .call(let third) = items[2] else {
            Issue.record("wrong items \(items)")
            return
        }
        #expect(first.method == "a")
        #expect(third.method == "b")
        #expect(slice(body, third.span) == #"{"jsonrpc":"2.0","id":2,"method":"b"}"#)
    }

    @Test(arguments: [
        ("", "empty body"), ("{", "truncated"), (#"{"a":}"#, "missing value"), ("[1,]", "trailing comma"),
        ("nul", "bad literal"), (#"{"a":1} x"#, "trailing garbage"), ("\"\u{01}\"", "control char"),
        (#"{"a":"\x"}"#, "bad escape"), ("01", "leading zero"), ("-", "lone minus"), ("1.", "bare fraction"),
        (#"{'a':1}"#, "single quotes"),
    ])
    func refusesInvalidJSON(text: String, why: String) {
        guard case .failure(.parse) = read(text) else {
            Issue.record("accepted \(why): \(text)")
            return
        }
    }

    @Test(arguments: [
        ("[]", "empty batch"), ("42", "number"), (#""x""#, "string"), ("null", "null"),
    ])
    func refusesNonRequests(text: String, why: String) {
        guard case .failure(.invalidRequest) = read(text) else {
            Issue.record("accepted \(why)")
            return
        }
    }

    @Test(arguments: [
        #"{"jsonrpc":"1.0","id":1,"method":"a"}"#, #"{"id":1,"method":"a"}"#, #"{"jsonrpc":2.0,"id":1,"method":"a"}"#,
        #"{"jsonrpc":"2.0","id":1}"#, #"{"jsonrpc":"2.0","id":1,"method":5}"#, #"{"jsonrpc":"2.0","id":1,"method":""}"#,
        #"{"jsonrpc":"2.0","id":{},"method":"a"}"#, #"{"jsonrpc":"2.0","id":1,"method":"a","params":"x"}"#,
    ])
    func marksInvalidRequestObjects(text: String) {
        guard case .success(.single(.invalid)) = read(text) else {
            Issue.record("accepted \(text)")
            return
        }
    }

    @Test func invalidItemKeepsReadableID() {
        let body = #"{"jsonrpc":"1.0","id":42,"method":"a"}"#
        guard case .success(.single(.invalid(let id, _))) = read(body) else { Issue.record("not invalid"); return }
        #expect(slice(body, id) == "42")
    }

    @Test func boundsNesting() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        guard case .failure(.invalidRequest(let message)) = read(deep) else { Issue.record("deep nesting accepted"); return }
        #expect(message.contains("nesting"))
        let nestedParams = #"{"jsonrpc":"2.0","id":1,"method":"a","params":"# + String(repeating: "[", count: 10) + String(repeating: "]", count: 10) + "}"
        #expect(call(nestedParams) != nil)
    }

    @Test func megabyteOfNestingFailsFast() {
        let deep = String(repeating: "[", count: 1 << 20)
        guard case .failure = read(deep) else { Issue.record("accepted"); return }
    }
}

@Suite struct RPCWriterTests {
    @Test func errorEchoesIDBytes() {
        let request = ByteBuffer(string: #"{"id":"a\"b"}"#)
        let body = RPCErrorWriter.body(RPCError(code: -32005, message: "slow \"down\"", data: [("retryAfterMs", "120")]), id: 6..<12, in: request)
        #expect(String(decoding: body, as: UTF8.self)
            == #"{"jsonrpc":"2.0","id":"a\"b","error":{"code":-32005,"message":"slow \"down\"","data":{"retryAfterMs":120}}}"#)
    }

    @Test func errorWithoutIDIsNull() {
        let body = RPCErrorWriter.body(RPCError(code: -32700, message: "x"), id: nil, in: nil)
        #expect(String(decoding: body, as: UTF8.self) == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}"#)
    }

    @Test func forwardBodyJoinsSpans() {
        let body = ByteBuffer(string: "[AAA,BB,C]")
        let out = RPCBatchWriter.forwardBody(spans: [1..<4, 8..<9], of: body, allocator: ByteBufferAllocator())
        #expect(String(buffer: out) == "[AAA,C]")
    }

    @Test func mergeAppendsIntoArray() {
        let merged = RPCBatchWriter.merge(response: ByteBuffer(string: " [ {\"a\":1} ]\n"), extra: Array(#"{"b":2}"#.utf8), allocator: ByteBufferAllocator())
        #expect(merged.map { String(buffer: $0) } == " [ {\"a\":1} ,{\"b\":2}]\n")
        let empty = RPCBatchWriter.merge(response: ByteBuffer(string: "[]"), extra: Array("{}".utf8), allocator: ByteBufferAllocator())
        #expect(empty.map { String(buffer: $0) } == "[{}]")
        #expect(RPCBatchWriter.merge(response: ByteBuffer(string: "{}"), extra: [1], allocator: ByteBufferAllocator()) == nil)
    }
}
