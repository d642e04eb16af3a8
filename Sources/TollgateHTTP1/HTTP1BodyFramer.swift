import NIOCore

/// A message body as its framing delimits it: a Content-Length count, the chunked coding, or
/// (responses only) everything until the connection closes. Shared by both parsers; the data
/// comes out as slices of the input.
enum HTTP1BodyFramer: Sendable {
    case length(remaining: Int)
    case chunked(HTTP1ChunkedDecoder)
    case untilClose(received: Int, limit: Int)

    enum Event {
        case data(ByteBuffer)
        case end
    }

    /// The next piece of the body, `.end` once it is complete, or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event? {
        switch self {
        case .length(let remaining):
            if remaining == 0 { return .end }
            guard buffer.readableBytes > 0 else { return nil }
            let take = min(remaining, buffer.readableBytes)
            self = .length(remaining: remaining - take)
            return .data(buffer.readSlice(length: take)!)
        case .chunked(var decoder):
            let event = try decoder.next(&buffer)
            self = .chunked(decoder)
            switch event {
            case nil: return nil
            case .data(let slice): return .data(slice)
            case .end: return .end
            }
        case .untilClose(let received, let limit):
            guard buffer.readableBytes > 0 else { return nil }
            guard received + buffer.readableBytes <= limit else { throw .bodyTooLarge }
            self = .untilClose(received: received + buffer.readableBytes, limit: limit)
            return .data(buffer.readSlice(length: buffer.readableBytes)!)
        }
    }
}
