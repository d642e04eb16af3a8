import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import TollgateHTTP1

/// Requests and responses for the HTTP/1.1 parsers: valid ones, malformed ones and the
/// smuggling cases of RFC 9112 §6.3 and §11.2, each with what Tollgate must decide.
enum HTTP1Corpus {
    struct Case: Sendable {
        var name: String
        var bytes: [UInt8]
        /// nil: accepted; else the status Tollgate refuses with.
        var refusal: Int?
        /// Why Tollgate refuses what NIO's decoder accepts, when it does.
        var stricter: String? = nil
    }

    static func request(_ text: String, _ name: String, refusal: Int? = nil, stricter: String? = nil) -> Case {
        Case(name: name, bytes: Array(text.utf8), refusal: refusal, stricter: stricter)
    }

    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#
    static func post(_ headers: String, body: String = body) -> String {
        "POST /v1/ethereum/tg_key HTTP/1.1\r\nHost: gw\r\n\(headers)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    static let requests: [Case] = [
        request(post("Content-Type: application/json\r\n"), "post with Content-Length"),
        request("GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n", "get without body"),
        request("GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.0 keep-alive without Host"),
        request("\r\n\r\nGET / HTTP/1.1\r\nHost: gw\r\n\r\n", "leading empty lines"),
        request(post("X-Tab:\tvalue\twith\ttabs \r\n"), "tabs and trailing space in a value"),
        request(post("X-Obs: caf\u{e9}\r\n"), "obs-text in a value"),
        request(post("content-type: application/json\r\nx-api-key: tg_abc\r\n"), "lowercase names"),
        request(post("X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\n"), "repeated X-Forwarded-For"),
        request(post("Expect: 100-continue\r\n"), "expect 100-continue"),
        request(post(""), "no content type"),
        request(post("X-Empty:\r\n"), "empty value"),
        request(post("", body: ""), "Content-Length 0"),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 007\r\n\r\n1234567", "leading zeros in Content-Length"),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1;q=\"x\"\r\n world\r\n0\r\n\r\n", "chunked with extensions"),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n", "chunked with a trailer"),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "chunked and empty"),
        request(post("") + post("Connection: close\r\n"), "two pipelined requests"),
        request("OPTIONS /v1/ethereum HTTP/1.1\r\nHost: gw\r\nOrigin: https://app\r\n\r\n", "preflight"),
        request("POST /" + String(repeating: "a", count: 4000) + " HTTP/1.1\r\nHost: gw\r\n\r\n", "long target"),
        request("GET / HTTP/1.1\r\nHost: gw\r\n" + (0..<99).map { "X-H\($0): v\r\n" }.joined() + "\r\n", "100 headers"),
        // Refused by both.
        request("GARBAGE\r\n\r\n", "no target or version", refusal: 400),
        request("get / HTTP/1.1\r\nHost: gw\r\n\r\n", "lowercase method", refusal: 501),
        request("BREW /pot HTTP/1.1\r\nHost: gw\r\n\r\n", "unknown method", refusal: 501),
        request("GET / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "Content-Length then chunked", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", "chunked then Content-Length", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "two different Content-Lengths", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: -1\r\n\r\n", "negative Content-Length", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 0x10\r\n\r\n", "hex Content-Length", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 1 2\r\n\r\n12", "two numbers in Content-Length", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n", "bad chunk size", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", "chunk without CRLF", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n", "chunk size overflow", refusal: 413),
        request("GET / HTTP/1.1\r\nHost: gw\r\nX-Bad\u{0}: v\r\n\r\n", "NUL in a name", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\r\nX Bad: v\r\n\r\n", "space in a name", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\r\nX-Bad: a\u{0}b\r\n\r\n", "NUL in a value", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "space before colon", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\r\n: empty\r\n\r\n", "empty name", refusal: 400),
        request("GET / HTTP/9.9\r\nHost: gw\r\n\r\n", "HTTP/9.9", refusal: 505),
        request("GET / HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n folded\r\n\r\n", "obs-fold", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\n", "gzip alone", refusal: 400),
        // Found by fuzz/run (libFuzzer): both once answered differently when cut in two.
        request("\r\n\nBool\r(\ry", "bare LF after a leading empty line", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\ncccccccccccccFccHTTP/1.ccccc.1\ns\roHt: g\r\n", "sixteen-digit chunk size then a bare LF", refusal: 413),
        // More refusals; those marked `stricter` are accepted by NIO's decoder and refused by Tollgate on purpose.
        request("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host", refusal: 400, stricter: "RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host"),
        request("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "two Hosts", refusal: 400, stricter: "RFC 9112 §3.2: more than one Host is a 400; two parsers may route by different ones"),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", "two equal Content-Lengths", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 5, 5\r\n\r\nhello", "Content-Length list", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "gzip then chunked", refusal: 501, stricter: "RFC 9112 §6.1: a server SHOULD answer 501 to a coding it does not decode"),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "two Transfer-Encodings", refusal: 400),
        request("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "chunked in HTTP/1.0", refusal: 400, stricter: "RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means the framing is faulty"),
        request("GET / HTTP/1.1\nHost: gw\n\n", "bare LF", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\rX: y\r\n\r\n", "bare CR in a line", refusal: 400),
        request("GET /caf\u{e9} HTTP/1.1\r\nHost: gw\r\n\r\n", "raw UTF-8 in the target", refusal: 400),
        request("GET  / HTTP/1.1\r\nHost: gw\r\n\r\n", "two spaces after the method", refusal: 400, stricter: "RFC 9112 §3: exactly one SP between request-line parts"),
        request("GET / HTTP/1.1 \r\nHost: gw\r\n\r\n", "space after the version", refusal: 400),
        request("GET / http/1.1\r\nHost: gw\r\n\r\n", "lowercase version", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", "space after the chunk size", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5;\u{1}\r\nhello\r\n0\r\n\r\n", "control byte in a chunk extension", refusal: 400),
        request("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", "bare LF after a chunk size", refusal: 400),
        request("GET / HTTP/1.1\r\nHost: gw\r\n" + (0..<101).map { "X-H\($0): v\r\n" }.joined() + "\r\n", "102 headers", refusal: 431, stricter: "server.max_headers (100): NIO accepts 10,000"),
        request("GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + String(repeating: "b", count: 17_000) + "\r\n\r\n", "17 KB header", refusal: 431, stricter: "server.max_header_bytes (16 KiB); NIO allows 80 KiB"),
    ]

    /// What a parser made of a byte stream: the messages it read, then how it stopped.
    struct Outcome: Equatable, CustomStringConvertible {
        struct Message: Equatable {
            var method: String
            var target: String
            var minorVersion: Int
            var framing: String
            var keepAlive: Bool
            var body: [UInt8]
        }
        var messages: [Message] = []
        /// nil: every byte was consumed into complete messages.
        var refusal: Int?
        var description: String { "\(messages.map { "\($0.method) \($0.target) 1.\($0.minorVersion) \($0.framing) body \($0.body.count)" }) refusal \(String(describing: refusal))" }
    }

    /// Tollgate's parser over `bytes`, handed over in pieces cut at `cuts`.
    static func tollgate(_ bytes: [UInt8], cuts: [Int] = [], limits: HTTP1Limits = HTTP1Limits()) -> Outcome {
        var parser = HTTP1RequestParser(limits: limits)
        var outcome = Outcome()
        var cumulation = ByteBuffer()
        var current: Outcome.Message?
        var start = 0
        // Every event consumes bytes or ends a message: more events than that is a loop.
        var budget = 2 * bytes.count + 16
        for end in cuts + [bytes.count] where end >= start {
            cumulation.writeBytes(bytes[start..<end])
            start = end
            do {
                while let event = try parser.next(&cumulation) {
                    budget -= 1
                    if budget < 0 {
                        outcome.refusal = -1
                        return outcome
                    }
                    switch event {
                    case .head(let head):
                        current = .init(
                            method: head.methodName, target: head.uri, minorVersion: head.minorVersion,
                            framing: head.chunked ? "chunked" : head.contentLength.map { "length \($0)" } ?? "none", keepAlive: head.keepAlive, body: [])
                    case .body(let slice):
                        current?.body += slice.readableBytesView
                    case .end:
                        if let current { outcome.messages.append(current) }
                        current = nil
                    }
                }
            } catch {
                outcome.refusal = error.status
                return outcome
            }
        }
        if current != nil || !parser.isIdle || cumulation.readableBytes > 0 { outcome.refusal = 0 }  // incomplete
        return outcome
    }

    /// NIO's `HTTPRequestDecoder` over the same bytes, in one piece.
    static func nio(_ bytes: [UInt8]) -> Outcome {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)))
        defer { _ = try? channel.finish() }
        var outcome = Outcome()
        var current: Outcome.Message?
        func drain() {
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let head):
                    let length = head.headers["content-length"].first.flatMap { Int($0) }
                    let chunked = head.headers["transfer-encoding"].contains { $0.lowercased().contains("chunked") }
                    current = .init(
                        method: head.method.rawValue, target: head.uri, minorVersion: head.version.minor,
                        framing: chunked ? "chunked" : length.map { "length \($0)" } ?? "none", keepAlive: head.isKeepAlive, body: [])
                case .body(let slice):
                    current?.body += slice.readableBytesView
                case .end:
                    if let current { outcome.messages.append(current) }
                    current = nil
                }
            }
        }
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            drain()
        } catch {
            drain()
            outcome.refusal = 400
            return outcome
        }
        if current != nil { outcome.refusal = 0 }
        return outcome
    }
}
