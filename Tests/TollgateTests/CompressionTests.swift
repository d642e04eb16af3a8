import CompressNIO
import NIOCore
import Testing
import TollgateCompression
import TollgateHTTP1

/// Content codings on plain values: what `Accept-Encoding` allows, what `Content-Encoding`
/// names, inflating within a limit, and the cached gzip member assembled per caller.
@Suite struct CompressionTests {
    static func negotiate(_ text: String) -> HTTP1ContentCoding? {
        Array(text.utf8).withUnsafeBytes { HTTP1ContentCoding.negotiate($0) }
    }

    static func coding(_ text: String) -> HTTP1ContentCoding {
        Array(text.utf8).withUnsafeBytes { HTTP1ContentCoding.of($0) }
    }

    @Test func acceptEncodingPicksGzipThenDeflateAndHonoursZeroWeights() {
        #expect(Self.negotiate("gzip") == .gzip)
        #expect(Self.negotiate("deflate, gzip, br, zstd") == .gzip)  // curl --compressed
        #expect(Self.negotiate("GZip;q=0.5") == .gzip)
        #expect(Self.negotiate("x-gzip") == .gzip)
        #expect(Self.negotiate("deflate") == .deflate)
        #expect(Self.negotiate("gzip;q=0, deflate") == .deflate)
        #expect(Self.negotiate("gzip;q=0.000, deflate;q=0") == nil)
        #expect(Self.negotiate("*") == .gzip)
        #expect(Self.negotiate("gzip;q=0, *") == .deflate)
        #expect(Self.negotiate("*;q=0") == nil)
        #expect(Self.negotiate("identity") == nil)
        #expect(Self.negotiate("br, zstd") == nil)
        #expect(Self.negotiate("") == nil)
        #expect(Self.negotiate("gzip;q=1.000") == .gzip)
        // Malformed weights never turn compression on.
        #expect(Self.negotiate("gzip;q=1.5") == nil)
        #expect(Self.negotiate("gzip;q=0.0001") == nil)
        #expect(Self.negotiate("gzip;level=9") == nil)
        #expect(Self.negotiate("gzip;q=") == nil)
    }

    @Test func contentEncodingNamesOneCodingOrIsUnsupported() {
        #expect(Self.coding("gzip") == .gzip)
        #expect(Self.coding("X-GZIP") == .gzip)
        #expect(Self.coding("deflate") == .deflate)
        #expect(Self.coding("identity") == .identity)
        #expect(Self.coding("br") == .unsupported)
        #expect(Self.coding("gzip, gzip") == .unsupported)
    }

    @Test func theParsersKeepTheCodingHeaders() throws {
        var parser = HTTP1RequestParser()
        var bytes = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nContent-Encoding: deflate\r\nContent-Length: 0\r\n\r\n")
        guard case .head(let head) = try parser.next(&bytes) else { Issue.record("no head"); return }
        #expect(head.answerCoding == .gzip)
        #expect(head.bodyCoding == .deflate)

        var response = HTTP1ResponseParser()
        var answer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n")
        guard case .head(let responseHead) = try response.next(&answer) else { Issue.record("no head"); return }
        #expect(responseHead.contentCoding == .gzip)
        var twice = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n\r\n")
        var again = HTTP1ResponseParser()
        guard case .head(let twiceHead) = try again.next(&twice) else { Issue.record("no head"); return }
        #expect(twiceHead.contentCoding == .unsupported)
    }

    static let json = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"result":["# + String(repeating: #""0xabcdef0123456789","#, count: 200) + #""0x0"]}"#)

    @Test func gzipDeflateAndRawDeflateInflateToTheSameBytes() throws {
        for algorithm in [CompressionAlgorithm.gzip(), .zlib(), .deflate()] {
            var input = Self.json
            let compressed = try input.compress(with: algorithm)
            let coding: HTTP1ContentCoding = "\(algorithm)" == "gzip" ? .gzip : .deflate
            let inflated = try Inflater.inflate(compressed, coding: coding, limit: 1 << 20, allocator: ByteBufferAllocator())
            #expect(inflated == Self.json, "\(algorithm)")
        }
    }

    @Test func inflatingStopsAtTheLimit() throws {
        var zeros = ByteBuffer(repeating: 0x20, count: 10 << 20)
        let bomb = try zeros.compress(with: .gzip())
        #expect(bomb.readableBytes < 20_000)
        #expect(throws: Inflater.Failure.tooLarge) {
            try Inflater.inflate(bomb, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator())
        }
        // Exactly at the limit is fine; one byte less is not.
        var exact = Self.json
        let gz = try exact.compress(with: .gzip())
        #expect(try Inflater.inflate(gz, coding: .gzip, limit: Self.json.readableBytes, allocator: ByteBufferAllocator()) == Self.json)
        #expect(throws: Inflater.Failure.tooLarge) {
            try Inflater.inflate(gz, coding: .gzip, limit: Self.json.readableBytes - 1, allocator: ByteBufferAllocator())
        }
    }

    @Test func truncatedCorruptAndTrailingBytesAreRefused() throws {
        var input = Self.json
        let gz = try input.compress(with: .gzip())
        for cut in [1, 10, gz.readableBytes / 2, gz.readableBytes - 4, gz.readableBytes - 1] {
            let part = gz.getSlice(at: gz.readerIndex, length: cut)!
            #expect(throws: Inflater.Failure.corrupt, "cut at \(cut)") {
                try Inflater.inflate(part, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator())
            }
        }
        var flipped = gz
        flipped.setInteger(flipped.getInteger(at: gz.readableBytes - 6, as: UInt8.self)! ^ 0xFF, at: gz.readableBytes - 6)  // the CRC
        #expect(throws: Inflater.Failure.corrupt) { try Inflater.inflate(flipped, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator()) }
        var trailing = gz
        trailing.writeString("garbage")
        #expect(throws: Inflater.Failure.corrupt) { try Inflater.inflate(trailing, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator()) }
        #expect(throws: Inflater.Failure.corrupt) {
            try Inflater.inflate(ByteBuffer(string: "not compressed"), coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator())
        }
        // Two gzip members are one body: their concatenation.
        var twice = gz
        twice.writeImmutableBuffer(gz)
        var expected = Self.json
        expected.writeImmutableBuffer(Self.json)
        #expect(try Inflater.inflate(twice, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator()) == expected)
    }

    @Test func theCompressorSkipsSmallAnswersAndRoundTrips() throws {
        let compressor = AnswerCompressor(minimumBytes: 1024, level: 1)
        #expect(compressor.compress(ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#), coding: .gzip, allocator: ByteBufferAllocator()) == nil)
        for coding in [HTTP1ContentCoding.gzip, .deflate] {
            let compressed = try #require(compressor.compress(Self.json, coding: coding, allocator: ByteBufferAllocator()))
            #expect(compressed.readableBytes < Self.json.readableBytes / 4)
            #expect(try Inflater.inflate(compressed, coding: coding, limit: 1 << 20, allocator: ByteBufferAllocator()) == Self.json)
        }
    }

    @Test func aCachedGzipMemberCarriesEachCallersID() throws {
        let compressor = AnswerCompressor()
        let answer = Self.json
        let idStart = #"{"jsonrpc":"2.0","id":"#.utf8.count
        let member = try #require(GzipMember(answer: answer, id: idStart..<(idStart + 1), compressor: compressor, allocator: ByteBufferAllocator()))
        #expect(member.size < answer.readableBytes / 4)
        for id in [#""abc""#, "123456789", #"{"weird":[1,2]}"#, String(repeating: "7", count: 70_000)] {
            let gz = member.member(id: ByteBuffer(string: id), allocator: ByteBufferAllocator())
            var expected = ByteBuffer(string: #"{"jsonrpc":"2.0","id":"#)
            expected.writeString(id)
            expected.writeImmutableBuffer(answer.getSlice(at: idStart + 1, length: answer.readableBytes - idStart - 1)!)
            #expect(try Inflater.inflate(gz, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator()) == expected)
            // An independent decoder agrees (compress-nio's, with its own CRC and length checks).
            var copy = gz
            #expect(try copy.decompress(with: .gzip()) == expected)
        }
        let null = member.member(id: nil, allocator: ByteBufferAllocator())
        #expect(String(buffer: try Inflater.inflate(null, coding: .gzip, limit: 1 << 20, allocator: ByteBufferAllocator())).hasPrefix(#"{"jsonrpc":"2.0","id":null,"#))
    }
}
