import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TollgateHTTP1

/// The upstream side: responses as nodes frame them, read like NIO's decoder reads them, and
/// the same whole or in pieces.
@Suite struct HTTP1ResponseParserTests {
    struct Case: Sendable {
        var name: String
        var text: String
        var refusal: Int?
    }

    static let body = #"{"jsonrpc":"2.0","id":1,"result":"0x10d4f"}"#
    static let cases: [Case] = [
        Case(name: "Content-Length", text: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"),
        Case(name: "chunked", text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"jsonrpc\":\"2.0\"\r\n1b\r\n,\"id\":1,\"result\":\"0x10d4f\"}\r\n0\r\n\r\n"),
        Case(name: "no reason phrase", text: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\n{}"),
        Case(name: "interim 100 first", text: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),
        Case(name: "error status with body", text: "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"),
        Case(name: "204", text: "HTTP/1.1 204 No Content\r\n\r\n"),
        Case(name: "HTTP/1.0 keep-alive", text: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}"),
        Case(name: "two responses", text: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n[1]"),
        Case(name: "length and chunked", text: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", refusal: 400),
        Case(name: "bad status", text: "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", refusal: 400),
        Case(name: "not HTTP", text: "SSH-2.0-OpenSSH\r\n\r\n", refusal: 400),
        Case(name: "bad chunk", text: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nqq\r\n", refusal: 400),
    ]

    struct Outcome: Equatable {
        var statuses: [Int] = []
        var bodies: [[UInt8]] = []
        var keepAlive: [Bool] = []
        var refused = false
    }

    static func tollgate(_ bytes: [UInt8], cuts: [Int] = [], closeAtEnd: Bool = false) -> Outcome {
        var parser = HTTP1ResponseParser()
        var outcome = Outcome()
        var buffer = ByteBuffer()
        var start = 0
        var body: [UInt8] = []
        func handle(_ event: HTTP1ResponseParser.Event) {
            switch event {
            case .head(let head):
                outcome.statuses.append(head.status)
                outcome.keepAlive.append(head.keepAlive)
                body = []
            case .body(let slice): body += slice.readableBytesView
            case .end: outcome.bodies.append(body)
            }
        }
        do {
            for end in cuts + [bytes.count] {
                buffer.writeBytes(bytes[start..<end])
                start = end
                while let event = try parser.next(&buffer) { handle(event) }
            }
            if closeAtEnd, let event = try parser.finish() { handle(event) }
        } catch {
            outcome.refused = true
        }
        return outcome
    }

    static func nio(_ bytes: [UInt8], requests: Int) -> Outcome {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes)))
        defer { _ = try? channel.finish() }
        for _ in 0..<requests {
            _ = try? channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")))
        }
        var outcome = Outcome()
        var body: [UInt8] = []
        func drain() {
            while let part = try? channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head) where head.status.code >= 200:
                    outcome.statuses.append(Int(head.status.code))
                    outcome.keepAlive.append(head.isKeepAlive)
                    body = []
                case .head: break
                case .body(let slice): body += slice.readableBytesView
                case .end: outcome.bodies.append(body)
                }
            }
        }
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            outcome.refused = true
        }
        drain()
        return outcome
    }

    @Test(arguments: cases.map(\.name))
    func nodesResponsesAreReadLikeNIOReadsThem(_ name: String) throws {
        let testCase = try #require(Self.cases.first { $0.name == name })
        let bytes = Array(testCase.text.utf8)
        let ours = Self.tollgate(bytes)
        #expect(ours.refused == (testCase.refusal != nil), "\(name): \(ours)")
        if testCase.refusal == nil {
            #expect(ours == Self.nio(bytes, requests: ours.statuses.count), "\(name)")
        } else {
            #expect(Self.nio(bytes, requests: 1).refused, "\(name): NIO accepted it")
        }
        for cut in 1..<bytes.count {
            #expect(Self.tollgate(bytes, cuts: [cut]) == ours, "\(name) cut at \(cut)")
        }
    }

    @Test func aBodyWithoutFramingEndsWithTheConnection() throws {
        let bytes = Array("HTTP/1.1 200 OK\r\n\r\n{\"partial\":".utf8) + Array("true}".utf8)
        let outcome = Self.tollgate(bytes, cuts: [25], closeAtEnd: true)
        #expect(outcome.statuses == [200] && outcome.keepAlive == [false])
        #expect(outcome.bodies == [Array("{\"partial\":true}".utf8)])
        // A Content-Length body cut short by the close is a truncation, not an answer.
        let truncated = Self.tollgate(Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8), closeAtEnd: true)
        #expect(truncated.refused && truncated.bodies.isEmpty)
    }

    /// Every recorded node answer of the conformance suite, framed both ways.
    @Test func conformanceAnswersArriveByteForByte() throws {
        let answers = try ConformanceTests.pairs().map(\.response)
        for answer in answers {
            let length = Array("HTTP/1.1 200 OK\r\nContent-Length: \(answer.utf8.count)\r\n\r\n\(answer)".utf8)
            #expect(Self.tollgate(length).bodies == [Array(answer.utf8)])
            var chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            var rest = Substring(answer)
            while !rest.isEmpty {
                let piece = rest.prefix(300)
                chunked += String(piece.utf8.count, radix: 16) + "\r\n" + piece + "\r\n"
                rest = rest.dropFirst(piece.count)
            }
            chunked += "0\r\n\r\n"
            let outcome = Self.tollgate(Array(chunked.utf8), cuts: [chunked.utf8.count / 2])
            #expect(outcome.bodies == [Array(answer.utf8)])
        }
    }
}
