import NIOCore

/// Tollgate's own HTTP/1.1 request parser: strict per RFC 9112, incremental, and cheap.
///
/// Why not NIO's `HTTPRequestDecoder`: it builds an `HTTPHeaders` of Strings for every header
/// and boxes each part in `NIOAny`, about 23 µs of CPU per proxied request here, more than
/// nginx spends in total; and it accepts what a gateway in front of nodes must not (10,000
/// headers, obs-fold, ambiguous framing). This parser keeps the head as one slice of the read
/// buffer, remembers where the dozen headers Tollgate reads are, and decides the framing.
///
/// A value type fed a cumulation buffer: call `next` until it returns nil (needs more bytes).
/// After an error the connection must close; the parser stays failed.
public struct HTTP1RequestParser: Sendable {
    public enum Event: Sendable {
        case head(HTTP1RequestHead)
        /// A piece of the body: a slice of the input, not a copy.
        case body(ByteBuffer)
        case end
    }

    /// What `step` found. The head stays in the parser (`head`) rather than riding in the
    /// step: an enum is moved whole whatever its case, and a head is some 176 bytes, so an
    /// `Event` carrying one was copied about thirty times per request on its way through the
    /// connection, `.body` and `.end` included (`memcpy` calls counted by uprobe,
    /// docs/benchmarks.md, eleventh session).
    public enum Step: Sendable {
        /// A head is complete: read it in `head`, take it with `takeHead()`.
        case head
        /// A piece of the body: a slice of the input, not a copy.
        case body(ByteBuffer)
        case end
    }

    enum State: Sendable {
        case head(HTTP1HeadScanner)
        case body(HTTP1BodyFramer)
        case failed(HTTP1ParseError)
    }

    public var limits: HTTP1Limits
    var state = State.head(HTTP1HeadScanner())
    /// The head of the message being read, from its `.head` step until `takeHead()`. The
    /// caller takes it (by the message's `.end` at the latest): kept, it holds the read buffer.
    public private(set) var head: HTTP1RequestHead?

    public init(limits: HTTP1Limits = HTTP1Limits()) {
        self.limits = limits
    }

    /// True between messages: nothing of the next request has been read yet.
    public var isIdle: Bool {
        if case .head(let scanner) = state { return scanner.lineStart == 0 }
        return false
    }

    /// True while a head read by `step` waits to be taken.
    public var hasHead: Bool { head != nil }

    /// The head the last `.head` step read, moved out of the parser.
    public mutating func takeHead() -> HTTP1RequestHead? {
        head.take()
    }

    /// The next event from `buffer` (consuming what it used), or nil when it needs more bytes.
    /// The head comes in the event; `step` is the same without moving it.
    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event? {
        switch try step(&buffer) {
        case nil: return nil
        case .head: return .head(head.take()!)
        case .body(let slice): return .body(slice)
        case .end: return .end
        }
    }

    /// The next step from `buffer` (consuming what it used), or nil when it needs more bytes.
    public mutating func step(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Step? {
        switch state {
        case .failed(let error):
            throw error
        case .head(var scanner):
            // Bytes skipped move the buffer under the scanner: it must look again from the start.
            if scanner.lineStart == 0, Self.skipLeadingCRLF(&buffer) { scanner.searched = 0 }
            let outcome: HTTP1HeadScanner.Outcome
            do {
                outcome = try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) in
                    try scanner.scan(bytes, maxHeaderBytes: limits.maxHeaderBytes)
                }
            } catch {
                state = .failed(error)
                throw error
            }
            guard case .complete(let end) = outcome else {
                state = .head(scanner)
                return nil
            }
            let framing: (chunked: Bool, contentLength: Int?)
            do {
                framing = try Self.parseHead(buffer.readSlice(length: end)!, limits: limits, into: &head)
            } catch {
                head = nil
                state = .failed(error)
                throw error
            }
            if framing.chunked {
                state = .body(.chunked(HTTP1ChunkedDecoder(maxBodyBytes: limits.maxBodyBytes, maxTrailerBytes: limits.maxHeaderBytes)))
            } else if let length = framing.contentLength, length > limits.maxBodyBytes {
                // The head still comes out (its request ID goes into the 413); the body is never read.
                state = .failed(.bodyTooLarge)
            } else {
                state = .body(.length(remaining: framing.contentLength ?? 0))
            }
            return .head
        case .body(var framer):
            do {
                let event = try framer.next(&buffer)
                switch event {
                case nil:
                    state = .body(framer)
                    return nil
                case .data(let slice):
                    state = .body(framer)
                    return .body(slice)
                case .end:
                    state = .head(HTTP1HeadScanner())
                    return .end
                }
            } catch {
                state = .failed(error)
                throw error
            }
        }
    }

    /// The connection closed: fine between messages, a truncation inside one.
    public func finish() throws(HTTP1ParseError) {
        if case .failed(let error) = state { throw error }
        guard isIdle else { throw .truncated }
    }

    /// RFC 9112 §2.2: a server SHOULD ignore empty lines before a request line.
    /// Returns whether any were skipped.
    static func skipLeadingCRLF(_ buffer: inout ByteBuffer) -> Bool {
        var skipped = false
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
            skipped = true
        }
        return skipped
    }

    /// Parses the head into `parsed`, field by field in place (a head built in a local and
    /// returned was copied out of the closure and again out of the call), and gives back its
    /// framing. After a throw `parsed` may hold part of a head: the caller clears it.
    static func parseHead(
        _ bytes: ByteBuffer, limits: HTTP1Limits, into parsed: inout HTTP1RequestHead?
    ) throws(HTTP1ParseError) -> (chunked: Bool, contentLength: Int?) {
        try bytes.withUnsafeReadableBytes { raw throws(HTTP1ParseError) -> (chunked: Bool, contentLength: Int?) in
            // request-line = method SP request-target SP HTTP-version CRLF
            var index = 0
            while HTTP1Syntax.isToken(raw[index]) { index += 1 }
            guard index > 0, raw[index] == HTTP1Syntax.sp else { throw .malformed(index == 0 ? .requestLine : .method) }
            let methodField = HTTP1Field(0, index)
            let targetStart = index + 1
            index = targetStart
            while HTTP1Syntax.isTarget(raw[index]) { index += 1 }
            guard index > targetStart, raw[index] == HTTP1Syntax.sp else { throw .malformed(index == targetStart ? .requestLine : .target) }
            let target = HTTP1Field(targetStart, index - targetStart)
            let versionStart = index + 1
            let minor = try Self.version(raw, versionStart)
            guard raw[versionStart + 8] == HTTP1Syntax.cr, raw[versionStart + 9] == HTTP1Syntax.lf else { throw .malformed(.version) }
            parsed = HTTP1RequestHead(
                method: HTTP1RequestHead.Method(raw, 0, Int(methodField.count)), minorVersion: minor,
                bytes: bytes, methodField: methodField, target: target, contentLength: nil, chunked: false, keepAlive: true,
                connectionUpgrade: false, expectsContinue: false, headerCount: 0, forwardedFor: [])
            // Methods are case-sensitive tokens; one that is not a known method is refused (501)
            // rather than passed on, as NIO's llhttp refuses it.
            guard parsed!.method != .other else { throw .unsupportedMethod }
            var framing = HTTP1Framing()
            var hosts = 0
            parsed!.headerCount = try HTTP1FieldLines.parse(raw, from: versionStart + 10, end: raw.count, maxFields: limits.maxHeaders) {
                name, nameCount, value, valueCount throws(HTTP1ParseError) in
                let field = HTTP1Field(value, valueCount)
                func named(_ lowercase: StaticString) -> Bool { HTTP1Syntax.equalsIgnoringCase(raw, name, nameCount, lowercase) }
                switch nameCount {
                case 4 where named("host"): hosts += 1; parsed!.host = field
                case 6 where named("origin"): parsed!.origin = field
                case 6 where named("expect"): parsed!.expectsContinue = HTTP1Syntax.equalsIgnoringCase(raw, value, valueCount, "100-continue")
                case 7 where named("upgrade"): parsed!.upgrade = field
                case 9 where named("x-api-key"): parsed!.apiKey = field
                case 10 where named("connection"): framing.connection(raw, value, valueCount)
                case 10 where named("user-agent"): parsed!.userAgent = field
                case 10 where named("tracestate"): parsed!.tracestate = field
                case 11 where named("traceparent"): parsed!.traceparent = field
                case 12 where named("content-type"): parsed!.contentType = field
                case 12 where named("x-request-id"): parsed!.requestID = field
                case 13 where named("authorization"): parsed!.authorization = field
                case 13 where named("cache-control"): parsed!.cacheControl = field
                case 14 where named("content-length"): try framing.contentLength(raw, value, valueCount)
                case 15 where named("x-forwarded-for"): parsed!.forwardedFor.append(field)
                case 15 where named("accept-encoding"): parsed!.acceptEncoding = field
                case 16 where named("content-encoding"): parsed!.contentEncoding = field
                case 17 where named("transfer-encoding"): try framing.transferEncoding(raw, value, valueCount)
                case 17 where named("sec-websocket-key"): parsed!.webSocketKey = field
                case 21 where named("sec-websocket-version"): parsed!.webSocketVersion = field
                case 22 where named("sec-websocket-protocol"): parsed!.webSocketProtocol = field
                default: break
                }
            }
            try framing.check(minorVersion: minor)
            // RFC 9112 §3.2: exactly one Host in HTTP/1.1 (400 otherwise); at most one in 1.0.
            if hosts > 1 { throw .malformed(.duplicateHost) }
            if hosts == 0, minor == 1 { throw .malformed(.missingHost) }
            parsed!.contentLength = framing.contentLength
            parsed!.chunked = framing.chunked
            parsed!.keepAlive = framing.persists(minorVersion: minor)
            parsed!.connectionUpgrade = framing.upgrade
            return (framing.chunked, framing.contentLength)
        }
    }

    /// `HTTP/1.0` or `HTTP/1.1` at `start` → the minor version; another well-formed version → 505.
    static func version(_ raw: UnsafeRawBufferPointer, _ start: Int) throws(HTTP1ParseError) -> Int {
        guard start + 9 < raw.count else { throw .malformed(.version) }
        let prefix: StaticString = "HTTP/"
        for offset in 0..<5 where raw[start + offset] != prefix.utf8Start[offset] { throw .malformed(.version) }
        let major = raw[start + 5] &- UInt8(ascii: "0")
        let minor = raw[start + 7] &- UInt8(ascii: "0")
        guard major < 10, raw[start + 6] == UInt8(ascii: "."), minor < 10 else { throw .malformed(.version) }
        guard major == 1, minor <= 1 else { throw .unsupportedVersion }
        return Int(minor)
    }
}
