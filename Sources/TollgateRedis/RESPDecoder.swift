import NIOCore

/// What went wrong reading RESP: the connection cannot continue after it.
public struct RESPProtocolError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { "RESP protocol error: \(message)" }
}

/// Incremental RESP2/RESP3 parser: returns nil (consuming nothing) until a whole value is in
/// the buffer, so it can be fed one byte at a time. Pure: no channel, no allocation beyond the
/// values it returns.
public struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    /// Aggregates deeper than this are refused (a hostile or broken server).
    public let maxDepth: Int
    /// Bulk strings and aggregates larger than this are refused.
    public let maxLength: Int

    public init(maxDepth: Int = 64, maxLength: Int = 512 << 20) {
        self.maxDepth = maxDepth
        self.maxLength = maxLength
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        var view = buffer
        guard let value = try parse(&view, depth: 0) else { return nil }
        buffer.moveReaderIndex(to: view.readerIndex)
        return value
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try decode(buffer: &buffer)
    }

    private func parse(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard depth <= maxDepth else { throw RESPProtocolError(message: "nesting deeper than \(maxDepth)") }
        guard let marker = buffer.readInteger(as: UInt8.self) else { return nil }
        switch marker {
        case UInt8(ascii: "+"): return line(&buffer).map { .simpleString($0) }
        case UInt8(ascii: "-"): return line(&buffer).map { .error($0) }
        case UInt8(ascii: ":"):
            guard let text = line(&buffer) else { return nil }
            guard let value = Int64(text) else { throw RESPProtocolError(message: "bad integer '\(text.prefix(32))'") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = try length(&buffer) else { return nil }
            if length < 0 { return .bulkString(nil) }
            guard let bytes = try blob(&buffer, length) else { return nil }
            return .bulkString(bytes)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try length(&buffer) else { return nil }
            if count < 0 { return .array(nil) }
            var values: [RESPValue] = []
            values.reserveCapacity(min(count, 1024))
            for _ in 0..<count {
                guard let value = try parse(&buffer, depth: depth + 1) else { return nil }
                values.append(value)
            }
            switch marker {
            case UInt8(ascii: "~"): return .set(values)
            case UInt8(ascii: ">"): return .push(values)
            default: return .array(values)
            }
        case UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard let count = try length(&buffer) else { return nil }
            var pairs: [(RESPValue, RESPValue)] = []
            for _ in 0..<max(0, count) {
                guard let key = try parse(&buffer, depth: depth + 1), let value = try parse(&buffer, depth: depth + 1) else { return nil }
                pairs.append((key, value))
            }
            if marker == UInt8(ascii: "%") { return .map(pairs) }
            guard let value = try parse(&buffer, depth: depth + 1) else { return nil }
            return .attribute(pairs, value)
        case UInt8(ascii: "_"):
            guard let text = line(&buffer) else { return nil }
            guard text.isEmpty else { throw RESPProtocolError(message: "null with content") }
            return .null
        case UInt8(ascii: "#"):
            guard let text = line(&buffer) else { return nil }
            guard text == "t" || text == "f" else { throw RESPProtocolError(message: "bad boolean '\(text.prefix(8))'") }
            return .boolean(text == "t")
        case UInt8(ascii: ","):
            guard let text = line(&buffer) else { return nil }
            switch text {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let value = Double(text) else { throw RESPProtocolError(message: "bad double '\(text.prefix(32))'") }
                return .double(value)
            }
        case UInt8(ascii: "("):
            return line(&buffer).map { .bigNumber($0) }
        case UInt8(ascii: "!"):
            guard let length = try length(&buffer) else { return nil }
            guard let bytes = try blob(&buffer, length) else { return nil }
            return .error(String(buffer: bytes))
        case UInt8(ascii: "="):
            guard let length = try length(&buffer) else { return nil }
            guard let bytes = try blob(&buffer, length) else { return nil }
            let text = String(buffer: bytes)
            guard text.utf8.count >= 4, text.utf8[text.utf8.index(text.utf8.startIndex, offsetBy: 3)] == UInt8(ascii: ":") else {
                throw RESPProtocolError(message: "verbatim string without a format")
            }
            return .verbatim(format: String(text.prefix(3)), text: String(text.dropFirst(4)))
        default:
            throw RESPProtocolError(message: "unknown type byte \(marker)")
        }
    }

    /// The text up to CRLF, or nil when the line is not complete yet.
    private func line(_ buffer: inout ByteBuffer) -> String? {
        guard let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")),
            end + 1 < buffer.writerIndex, buffer.getInteger(at: end + 1, as: UInt8.self) == UInt8(ascii: "\n")
        else { return nil }
        let text = buffer.readString(length: end - buffer.readerIndex)
        buffer.moveReaderIndex(forwardBy: 2)
        return text
    }

    private func length(_ buffer: inout ByteBuffer) throws -> Int? {
        guard let text = line(&buffer) else { return nil }
        guard let value = Int(text), value >= -1 else { throw RESPProtocolError(message: "bad length '\(text.prefix(32))'") }
        guard value <= maxLength else { throw RESPProtocolError(message: "length \(value) over the limit") }
        return value
    }

    private func blob(_ buffer: inout ByteBuffer, _ length: Int) throws -> ByteBuffer? {
        guard buffer.readableBytes >= length + 2 else { return nil }
        let bytes = buffer.readSlice(length: length)!
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"), buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n") else {
            throw RESPProtocolError(message: "blob not followed by CRLF")
        }
        return bytes
    }
}
