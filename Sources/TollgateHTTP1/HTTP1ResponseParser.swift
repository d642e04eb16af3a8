import NIOCore

/// A node's response head: the status and how its body is framed.
public struct HTTP1ResponseHead: Sendable, Equatable {
    public var status: Int
    public var minorVersion: Int
    public var contentLength: Int?
    public var chunked: Bool
    /// False when the node will close the connection after this response.
    public var keepAlive: Bool
    /// How the body is encoded (`Content-Encoding`): a gzip answer is inflated, bounded, by
    /// the upstream connection.
    public var contentCoding: HTTP1ContentCoding = .identity
}

/// Tollgate's parser for responses from upstream nodes, the other half of `HTTP1RequestParser`.
///
/// Nodes frame with Content-Length (geth, reth, nginx) or chunked (Erigon, some providers),
/// and now and then with the connection's close. Interim 1xx responses are skipped. A
/// Content-Length body that arrives in one read comes out as one slice of it, not a copy.
/// Every request Tollgate sends upstream is a POST, so no response is body-less by method.
public struct HTTP1ResponseParser: Sendable {
    public enum Event: Sendable {
        case head(HTTP1ResponseHead)
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

    public init(limits: HTTP1Limits = HTTP1Limits()) {
        self.limits = limits
    }

    /// True between responses.
    public var isIdle: Bool {
        if case .head(let scanner) = state { return scanner.lineStart == 0 }
        return false
    }

    public mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event? {
        do {
            return try step(&buffer)
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .head(var scanner):
                let outcome = try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) in
                    try scanner.scan(bytes, maxHeaderBytes: limits.maxHeaderBytes)
                }
                guard case .complete(let end) = outcome else {
                    state = .head(scanner)
                    return nil
                }
                let head = try buffer.withUnsafeReadableBytes { raw throws(HTTP1ParseError) in
                    try Self.parseHead(UnsafeRawBufferPointer(rebasing: raw[0..<end]), limits: limits)
                }
                buffer.moveReaderIndex(forwardBy: end)
                if (100..<200).contains(head.status) {
                    // 100 Continue and other interim answers: the real one follows.
                    state = .head(HTTP1HeadScanner())
                    continue
                }
                var announced = head
                if head.status == 204 || head.status == 304 {
                    state = .body(.length(remaining: 0))
                } else if head.chunked {
                    state = .body(.chunked(HTTP1ChunkedDecoder(maxBodyBytes: limits.maxBodyBytes, maxTrailerBytes: limits.maxHeaderBytes)))
                } else if let length = head.contentLength {
                    guard length <= limits.maxBodyBytes else { throw .bodyTooLarge }
                    state = .body(.length(remaining: length))
                } else {
                    state = .body(.untilClose(received: 0, limit: limits.maxBodyBytes))
                    announced.keepAlive = false
                }
                return .head(announced)
            case .body(var framer):
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
            }
        }
    }

    /// The connection closed: ends a close-delimited body; inside any other message it is a
    /// truncation. Returns `.end` when the close completed a response.
    public mutating func finish() throws(HTTP1ParseError) -> Event? {
        switch state {
        case .body(.untilClose):
            state = .head(HTTP1HeadScanner())
            return .end
        case .failed(let error):
            throw error
        default:
            guard isIdle else { throw .truncated }
            return nil
        }
    }

    static func parseHead(_ raw: UnsafeRawBufferPointer, limits: HTTP1Limits) throws(HTTP1ParseError) -> HTTP1ResponseHead {
        // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
        let minor = try HTTP1RequestParser.version(raw, 0)
        guard raw.count > 13, raw[8] == HTTP1Syntax.sp else { throw .malformed(.statusLine) }
        var status = 0
        for offset in 9..<12 {
            let digit = raw[offset] &- UInt8(ascii: "0")
            guard digit < 10 else { throw .malformed(.statusLine) }
            status = status * 10 + Int(digit)
        }
        guard status >= 100 else { throw .malformed(.statusLine) }
        var index = 12
        if raw[index] == HTTP1Syntax.sp {
            index += 1
            while raw[index] != HTTP1Syntax.cr {
                guard HTTP1Syntax.isFieldValue(raw[index]) else { throw .malformed(.statusLine) }
                index += 1
            }
        }
        // A missing reason phrase ("HTTP/1.1 200\r\n") is accepted: some nodes send it.
        guard raw[index] == HTTP1Syntax.cr, raw[index + 1] == HTTP1Syntax.lf else { throw .malformed(.statusLine) }
        var framing = HTTP1Framing()
        var coding = HTTP1ContentCoding.identity
        _ = try HTTP1FieldLines.parse(raw, from: index + 2, end: raw.count, maxFields: limits.maxHeaders) {
            name, nameCount, value, valueCount throws(HTTP1ParseError) in
            switch nameCount {
            case 10 where HTTP1Syntax.equalsIgnoringCase(raw, name, nameCount, "connection"): framing.connection(raw, value, valueCount)
            case 14 where HTTP1Syntax.equalsIgnoringCase(raw, name, nameCount, "content-length"): try framing.contentLength(raw, value, valueCount)
            case 17 where HTTP1Syntax.equalsIgnoringCase(raw, name, nameCount, "transfer-encoding"): try framing.transferEncoding(raw, value, valueCount)
            case 16 where HTTP1Syntax.equalsIgnoringCase(raw, name, nameCount, "content-encoding"):
                // A second field line is as bad as a list: refuse to guess the order.
                coding = coding == .identity ? HTTP1ContentCoding.of(UnsafeRawBufferPointer(rebasing: raw[value..<(value + valueCount)])) : .unsupported
            default: break
            }
        }
        try framing.check(minorVersion: minor)
        return HTTP1ResponseHead(
            status: status, minorVersion: minor, contentLength: framing.contentLength, chunked: framing.chunked,
            keepAlive: framing.persists(minorVersion: minor), contentCoding: coding)
    }
}
