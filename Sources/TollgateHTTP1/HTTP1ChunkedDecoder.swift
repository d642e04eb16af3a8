import NIOCore

/// The chunked transfer coding (RFC 9112 §7.1) as a state machine over a cumulation buffer.
/// Data comes out as slices of the input (no copy); sizes, extensions, terminators and trailers
/// are checked strictly, since a lax chunk parser is the other half of most smuggling bugs.
struct HTTP1ChunkedDecoder: Sendable {
    enum State: Sendable {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers(scanner: HTTP1HeadScanner)
        case done
    }

    enum Event {
        case data(ByteBuffer)
        case end
    }

    var state = State.size
    var total = 0
    let maxBodyBytes: Int
    let maxTrailerBytes: Int
    /// A size line longer than this is refused (extensions are bounded too).
    static let maxSizeLine = 1024
    /// 15 hex digits (2^60) is past any body limit and cannot overflow.
    static let maxSizeDigits = 15

    init(maxBodyBytes: Int, maxTrailerBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// The next piece of the body, `.end` after the trailers, or nil when more bytes are needed.
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1ParseError) -> Event? {
        while true {
            switch state {
            case .size:
                guard let (size, lineLength) = try sizeLine(buffer) else { return nil }
                buffer.moveReaderIndex(forwardBy: lineLength)
                if size == 0 {
                    state = .trailers(scanner: HTTP1HeadScanner())
                } else {
                    guard size <= maxBodyBytes - total else { throw .bodyTooLarge }
                    total += size
                    state = .data(remaining: size)
                }
            case .data(let remaining):
                guard buffer.readableBytes > 0 else { return nil }
                let take = min(remaining, buffer.readableBytes)
                let slice = buffer.readSlice(length: take)!
                state = take == remaining ? .dataEnd : .data(remaining: remaining - take)
                return .data(slice)
            case .dataEnd:
                guard buffer.readableBytes >= 2 else {
                    if buffer.readableBytes == 1, buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) != HTTP1Syntax.cr {
                        throw .malformed(.chunkTerminator)
                    }
                    return nil
                }
                let crlf = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt16.self)
                guard crlf == 0x0D0A else { throw .malformed(.chunkTerminator) }
                buffer.moveReaderIndex(forwardBy: 2)
                state = .size
            case .trailers(var scanner):
                let outcome = try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) in
                    try scanner.scan(bytes, maxHeaderBytes: maxTrailerBytes)
                }
                switch outcome {
                case .needMore:
                    state = .trailers(scanner: scanner)
                    return nil
                case .complete(let end):
                    try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) in
                        _ = try HTTP1FieldLines.parse(bytes, from: 0, end: end, maxFields: .max) { _, _, _, _ throws(HTTP1ParseError) in }
                    }
                    buffer.moveReaderIndex(forwardBy: end)
                    state = .done
                    return .end
                }
            case .done:
                return .end
            }
        }
    }

    /// chunk-size [BWS ; chunk-ext] CRLF → (size, bytes the line takes), or nil for more bytes.
    /// Every check is made in the same order whether the line is whole or still arriving, so
    /// the answer never depends on where the bytes were cut.
    private func sizeLine(_ buffer: ByteBuffer) throws(HTTP1ParseError) -> (Int, Int)? {
        try buffer.withUnsafeReadableBytes { bytes throws(HTTP1ParseError) -> (Int, Int)? in
            let lf = HTTP1HeadScanner.find(HTTP1Syntax.lf, in: bytes, from: 0)
            let seen = lf ?? bytes.count
            var index = 0
            var size = 0
            while index < seen, let digit = Self.hex(bytes[index]) {
                guard index < Self.maxSizeDigits else { throw .bodyTooLarge }
                size = size << 4 | digit
                index += 1
            }
            if index < seen {
                let next = bytes[index]
                guard index > 0, next == HTTP1Syntax.cr || next == UInt8(ascii: ";") || HTTP1Syntax.isWhitespace(next) else {
                    throw .malformed(.chunkSize)
                }
            }
            guard seen <= Self.maxSizeLine else { throw .malformed(.chunkExtension) }
            guard let lf else { return nil }
            guard index > 0 else { throw .malformed(lf == 0 ? .bareLF : .chunkSize) }
            guard bytes[lf - 1] == HTTP1Syntax.cr else { throw .malformed(.bareLF) }
            let end = lf - 1
            if index < end {
                // Extensions are allowed and ignored, but only in their grammar's alphabet.
                while index < end, HTTP1Syntax.isWhitespace(bytes[index]) { index += 1 }
                guard index < end, bytes[index] == UInt8(ascii: ";") else { throw .malformed(.chunkSize) }
                for offset in index..<end where !HTTP1Syntax.isFieldValue(bytes[offset]) || bytes[offset] >= 0x80 {
                    throw .malformed(.chunkExtension)
                }
            }
            return (size, lf + 1)
        }
    }

    private static func hex(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
