import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TollgateHTTP1

/// Tollgate's HTTP/1.1 request parser against its corpus, against itself when the bytes arrive
/// in pieces, and against NIO's decoder (llhttp): they agree on every case but the listed ones,
/// where Tollgate refuses on purpose.
@Suite struct HTTP1ParserTests {
    @Test(arguments: HTTP1Corpus.requests.map(\.name))
    func eachCaseIsDecidedAsExpectedAndLikeNIOUnlessListed(_ name: String) throws {
        let testCase = try #require(HTTP1Corpus.requests.first { $0.name == name })
        let ours = HTTP1Corpus.tollgate(testCase.bytes)
        #expect(ours.refusal == testCase.refusal, "\(name): \(ours)")
        if testCase.refusal == nil { #expect(!ours.messages.isEmpty) }
        let theirs = HTTP1Corpus.nio(testCase.bytes)
        if let reason = testCase.stricter {
            #expect(ours.refusal != nil && theirs.refusal == nil, "\(name) is listed as stricter (\(reason)), but NIO: \(theirs)")
        } else if ours.refusal == nil {
            #expect(ours == theirs, "\(name): ours \(ours), NIO \(theirs)")
        } else {
            #expect(theirs.refusal != nil, "\(name): NIO accepted \(theirs)")
        }
    }

    /// A message cut anywhere — at every byte boundary in two, and one byte at a time — is
    /// read exactly as it is in one piece.
    @Test(arguments: HTTP1Corpus.requests.map(\.name))
    func splittingAnywhereChangesNothing(_ name: String) throws {
        let testCase = try #require(HTTP1Corpus.requests.first { $0.name == name })
        let whole = HTTP1Corpus.tollgate(testCase.bytes)
        let count = testCase.bytes.count
        let step = max(1, count / 600)
        for cut in stride(from: 1, to: count, by: step) {
            let split = HTTP1Corpus.tollgate(testCase.bytes, cuts: [cut])
            #expect(split == whole, "\(name) cut at \(cut): \(split) vs \(whole)")
            if split != whole { return }
        }
        let bytewise = HTTP1Corpus.tollgate(testCase.bytes, cuts: Array(1..<count))
        #expect(bytewise == whole, "\(name) byte by byte: \(bytewise)")
    }

    /// A field's place is two `UInt16`s: at the largest head allowed, a field near its end is
    /// read from the right bytes, and a limit set higher is held at the ceiling.
    @Test func theLargestHeadAllowedIsReadToItsLastField() throws {
        let limits = HTTP1Limits(maxHeaderBytes: 1 << 20)
        #expect(limits.maxHeaderBytes == HTTP1Limits.headerBytesCeiling)
        func head(filler: Int) -> [UInt8] {
            Array("POST /v1/ethereum HTTP/1.1\r\nHost: gw\r\nX-Filler: \(String(repeating: "f", count: filler))\r\nX-API-Key: tg_last\r\nContent-Length: 0\r\n\r\n".utf8)
        }
        let fits = head(filler: HTTP1Limits.headerBytesCeiling - 120)
        #expect(fits.count > 65_000 && fits.count < HTTP1Limits.headerBytesCeiling)
        var parser = HTTP1RequestParser(limits: limits)
        var buffer = ByteBuffer(bytes: fits)
        guard case .head(let parsed) = try parser.next(&buffer) else {
            Issue.record("no head")
            return
        }
        let key = try #require(parsed.apiKey)
        #expect(Int(key.start) > 65_000)
        #expect(parsed.string(key) == "tg_last")
        #expect(parsed.string(parsed.host) == "gw")

        let over = head(filler: HTTP1Limits.headerBytesCeiling)
        var refusing = HTTP1RequestParser(limits: limits)
        var large = ByteBuffer(bytes: over)
        #expect(throws: HTTP1ParseError.headTooLarge) { _ = try refusing.next(&large) }
    }

    /// Every request body of the execution-apis conformance suite, as a POST: both parsers read
    /// the same bytes, whole and cut at every boundary.
    @Test func conformanceBodiesPassUnchanged() throws {
        let bodies = try ConformanceTests.pairs().map(\.request)
        #expect(bodies.count > 100)
        for body in bodies {
            let bytes = Array(HTTP1Corpus.post("Content-Type: application/json\r\n", body: body).utf8)
            let ours = HTTP1Corpus.tollgate(bytes)
            #expect(ours.refusal == nil && ours.messages.first?.body == Array(body.utf8))
            #expect(ours == HTTP1Corpus.nio(bytes))
            for cut in stride(from: 1, to: bytes.count, by: max(7, bytes.count / 40)) {
                #expect(HTTP1Corpus.tollgate(bytes, cuts: [cut]) == ours)
            }
        }
    }

    @Test func headFieldsAreRangesOfTheReadBuffer() throws {
        var buffer = ByteBuffer(string: "POST /v1/ethereum/tg_abc?x=1 HTTP/1.1\r\nHost: gw\r\nX-API-Key:  tg_k \r\nAuthorization: Bearer t\r\n"
            + "X-Request-ID: r-1\r\nOrigin: https://app\r\nUser-Agent: ua\r\ntraceparent: 00-aa-bb-01\r\nContent-Type: application/json\r\n"
            + "X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nConnection: close, upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n{}")
        var parser = HTTP1RequestParser()
        guard case .head(let head) = try parser.next(&buffer) else { Issue.record("no head"); return }
        #expect(head.method == .post && head.minorVersion == 1)
        #expect(head.uri == "/v1/ethereum/tg_abc?x=1")
        #expect(head.string(head.apiKey) == "tg_k" && head.string(head.authorization) == "Bearer t")
        #expect(head.string(head.requestID) == "r-1" && head.string(head.origin) == "https://app" && head.string(head.userAgent) == "ua")
        #expect(head.string(head.traceparent) == "00-aa-bb-01" && head.string(head.contentType) == "application/json")
        #expect(head.forwardedFor.map { head.string($0) } == ["1.1.1.1", "2.2.2.2"])
        #expect(!head.keepAlive && head.connectionUpgrade && head.field(head.upgrade, equalsIgnoringCase: "websocket"))
        #expect(head.contentLength == 2 && head.headerCount == 13)
        guard case .body(let body) = try parser.next(&buffer) else { Issue.record("no body"); return }
        #expect(String(buffer: body) == "{}")
        guard case .end = try parser.next(&buffer) else { Issue.record("no end"); return }
        #expect(parser.isIdle)
        #expect(try parser.next(&buffer) == nil)
    }

    /// A body over the limit is refused from its Content-Length, before a byte of it arrives; the
    /// head still comes out first so the refusal can carry the request's ID.
    @Test func anAnnouncedBodyOverTheLimitIsRefusedAtOnce() throws {
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: gw\r\nX-Request-ID: big\r\nContent-Length: 999000000000\r\n\r\n")
        var parser = HTTP1RequestParser(limits: HTTP1Limits(maxBodyBytes: 1000))
        guard case .head(let head) = try parser.next(&buffer) else { Issue.record("no head"); return }
        #expect(head.string(head.requestID) == "big")
        #expect(throws: HTTP1ParseError.bodyTooLarge) { try parser.next(&buffer) }
        // Chunked bodies are counted as they come.
        var chunked = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + String(repeating: "x", count: 1000) + "\r\n1\r\n")
        var second = HTTP1RequestParser(limits: HTTP1Limits(maxBodyBytes: 1000))
        #expect(throws: HTTP1ParseError.bodyTooLarge) {
            while try second.next(&chunked) != nil {}
        }
    }

    /// `step` leaves the head in the parser until it is taken (the connection takes it at the
    /// message's end); `next` is `step` with the head moved into its event.
    @Test func aStepLeavesTheHeadInTheParserUntilItIsTaken() throws {
        var buffer = ByteBuffer(string: "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}"
            + "POST /b HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n")
        var parser = HTTP1RequestParser()
        #expect(!parser.hasHead)
        guard case .head? = try parser.step(&buffer) else { Issue.record("no head"); return }
        #expect(parser.hasHead && parser.head?.uri == "/a")
        guard case .body(let body)? = try parser.step(&buffer) else { Issue.record("no body"); return }
        #expect(String(buffer: body) == "{}")
        guard case .end? = try parser.step(&buffer) else { Issue.record("no end"); return }
        #expect(parser.hasHead)
        let taken = parser.takeHead()
        let first = try #require(taken)
        #expect(first.uri == "/a" && first.contentLength == 2)
        let again = parser.takeHead()
        #expect(!parser.hasHead && again == nil)
        guard case .head(let second)? = try parser.next(&buffer) else { Issue.record("no second head"); return }
        #expect(second.uri == "/b" && !parser.hasHead)
    }

    /// A head refused while it is read leaves no part of itself in the parser; a body refused
    /// after its head leaves the head, for the refusal's request ID.
    @Test func aRefusedHeadLeavesNothingBehindAndARefusedBodyLeavesItsHead() throws {
        var twoHosts = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nX-Request-ID: two\r\nHost: b\r\n\r\n")
        var parser = HTTP1RequestParser()
        #expect(throws: HTTP1ParseError.self) { try parser.step(&twoHosts) }
        #expect(!parser.hasHead)

        var big = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: gw\r\nX-Request-ID: big\r\nContent-Length: 5000\r\n\r\n")
        var limited = HTTP1RequestParser(limits: HTTP1Limits(maxBodyBytes: 1000))
        guard case .head? = try limited.step(&big) else { Issue.record("no head"); return }
        #expect(throws: HTTP1ParseError.bodyTooLarge) { try limited.step(&big) }
        let taken = limited.takeHead()
        let kept = try #require(taken)
        #expect(kept.string(kept.requestID) == "big")
    }

    @Test func truncatedMessagesAreToldFromCleanCloses() throws {
        var parser = HTTP1RequestParser()
        var buffer = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 10\r\n\r\nabc")
        while try parser.next(&buffer) != nil {}
        #expect(throws: HTTP1ParseError.truncated) { try parser.finish() }
        let idle = HTTP1RequestParser()
        try idle.finish()
    }
}
