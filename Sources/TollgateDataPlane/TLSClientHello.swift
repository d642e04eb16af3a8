import NIOCore

/// What a TLS ClientHello asks for, read from the first record before any TLS library sees it:
/// the server name (SNI) and the application protocols offered (ALPN). Enough to give an ACME
/// validator (`acme-tls/1`, RFC 8737) its challenge certificate and everyone else the real one.
/// Pure and bounded: a hello that does not fit in one record is not looked into.
enum TLSClientHello: Equatable {
    case incomplete
    /// Not a ClientHello this reader follows; the connection goes on as usual.
    case other
    case hello(serverName: String?, protocols: [String])

    static func read(_ buffer: ByteBuffer) -> TLSClientHello {
        let bytes = buffer.readableBytesView
        guard bytes.count >= 5 else { return .incomplete }
        let start = bytes.startIndex
        // Record: handshake (22), version, length.
        guard bytes[start] == 22 else { return .other }
        let length = Int(bytes[start + 3]) << 8 | Int(bytes[start + 4])
        guard bytes.count >= 5 + length else { return length > 16_384 ? .other : .incomplete }
        var reader = Reader(bytes: Array(bytes[(start + 5)..<(start + 5 + length)]))
        // Handshake: client_hello (1), 24-bit length, version, random, session id, suites, compression.
        guard reader.byte() == 1, let bodyLength = reader.number(3), bodyLength <= reader.remaining, reader.skip(2 + 32),
            let session = reader.number(1), reader.skip(session), let suites = reader.number(2), reader.skip(suites),
            let compression = reader.number(1), reader.skip(compression)
        else { return .other }
        guard reader.remaining > 0 else { return .hello(serverName: nil, protocols: []) }
        guard let extensionsLength = reader.number(2), extensionsLength <= reader.remaining else { return .other }
        var serverName: String?
        var protocols: [String] = []
        var extensions = Reader(bytes: reader.take(extensionsLength) ?? [])
        while extensions.remaining >= 4 {
            guard let type = extensions.number(2), let size = extensions.number(2), let body = extensions.take(size) else { return .other }
            var field = Reader(bytes: body)
            switch type {
            case 0:  // server_name: a list; the host_name (0) entry.
                guard let listLength = field.number(2), listLength <= field.remaining else { return .other }
                while field.remaining >= 3 {
                    guard let kind = field.byte(), let nameLength = field.number(2), let name = field.take(nameLength) else { return .other }
                    if kind == 0 { serverName = String(decoding: name, as: UTF8.self) }
                }
            case 16:  // application_layer_protocol_negotiation: a list of 8-bit-length names.
                guard let listLength = field.number(2), listLength <= field.remaining else { return .other }
                while field.remaining >= 1 {
                    guard let nameLength = field.number(1), let name = field.take(nameLength) else { return .other }
                    protocols.append(String(decoding: name, as: UTF8.self))
                }
            default: break
            }
        }
        return .hello(serverName: serverName, protocols: protocols)
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        var remaining: Int { bytes.count - index }

        mutating func byte() -> UInt8? {
            guard index < bytes.count else { return nil }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func number(_ width: Int) -> Int? {
            guard remaining >= width else { return nil }
            var value = 0
            for _ in 0..<width { value = value << 8 | Int(bytes[index]); index += 1 }
            return value
        }

        mutating func skip(_ count: Int) -> Bool {
            guard count >= 0, remaining >= count else { return false }
            index += count
            return true
        }

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, remaining >= count else { return nil }
            defer { index += count }
            return Array(bytes[index..<(index + count)])
        }
    }
}
