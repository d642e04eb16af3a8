import NIOCore

/// A call's `params` read as a small tree, for the few requests that need them: the response
/// cache's key (whitespace and object key order must not matter) and the block a read is
/// pinned to. Only cacheable methods pay for it; forwarded requests never do.
public indirect enum JSONValue: Sendable, Equatable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    /// A string's raw contents between the quotes (escapes kept as sent).
    case string(String)
    /// A number, true, false or null, as sent.
    case literal(String)

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.array(let a), .array(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.literal(let a), .literal(let b)): a == b
        default: false
        }
    }

    public subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, index < items.count else { return nil }
        return items[index]
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The value as JSON text (a string with its quotes): what `RPCResponseReader.quantity` reads.
    public var jsonText: String {
        var bytes: [UInt8] = []
        canonical(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The same value without insignificant whitespace and with object keys sorted: two
    /// requests that mean the same get the same bytes.
    public func canonical(into output: inout [UInt8]) {
        switch self {
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            for (index, member) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }).enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                output.append(UInt8(ascii: "\""))
                output.append(contentsOf: member.key.utf8)
                output.append(contentsOf: "\":".utf8)
                member.value.canonical(into: &output)
            }
            output.append(UInt8(ascii: "}"))
        case .array(let items):
            output.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                item.canonical(into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .string(let value):
            output.append(UInt8(ascii: "\""))
            output.append(contentsOf: value.utf8)
            output.append(UInt8(ascii: "\""))
        case .literal(let value):
            output.append(contentsOf: value.utf8)
        }
    }
}

public enum RPCParams {
    /// The call's `params` (an empty array when absent), or nil if they cannot be read.
    public static func of(_ call: RPCCall, in body: ByteBuffer) -> JSONValue? {
        body.withUnsafeReadableBytes { all in
            var scanner = JSONScanner(bytes: UnsafeRawBufferPointer(rebasing: all[call.span]), maxDepth: RPCEnvelopeReader.defaultMaxDepth)
            scanner.index = 1
            guard scanner.seekMember("params") else { return .array([]) }
            return try? read(&scanner, depth: 1)
        }
    }

    /// A JSON text (a raw `result` from `RPCResponseReader`) as a tree; nil if not JSON.
    public static func parse(_ text: String) -> JSONValue? {
        var text = text
        return text.withUTF8 { utf8 in
            var scanner = JSONScanner(bytes: UnsafeRawBufferPointer(utf8), maxDepth: RPCEnvelopeReader.defaultMaxDepth)
            scanner.skipWhitespace()
            guard let value = try? read(&scanner, depth: 1) else { return nil }
            scanner.skipWhitespace()
            return scanner.atEnd ? value : nil
        }
    }

    /// The same for a response body's `result` (a receipt's block number, say).
    public static func result(in body: ByteBuffer) -> JSONValue? {
        body.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes: bytes, maxDepth: RPCEnvelopeReader.defaultMaxDepth)
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "{") else { return nil }
            scanner.index += 1
            guard scanner.seekMember("result") else { return nil }
            return try? read(&scanner, depth: 1)
        }
    }

    private static func read(_ scanner: inout JSONScanner, depth: Int) throws(JSONScanner.Failure) -> JSONValue {
        guard depth <= scanner.maxDepth else { throw .tooDeep }
        switch scanner.peek() {
        case UInt8(ascii: "{"):
            scanner.index += 1
            var members: [(key: String, value: JSONValue)] = []
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") { scanner.index += 1; return .object([]) }
            while true {
                scanner.skipWhitespace()
                let (key, _) = try scanner.scanString()
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipWhitespace()
                members.append((text(scanner, key), try read(&scanner, depth: depth + 1)))
                scanner.skipWhitespace()
                guard let next = scanner.peek() else { throw .syntax(at: scanner.index) }
                scanner.index += 1
                if next == UInt8(ascii: "}") { return .object(members) }
                guard next == UInt8(ascii: ",") else { throw .syntax(at: scanner.index) }
            }
        case UInt8(ascii: "["):
            scanner.index += 1
            var items: [JSONValue] = []
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "]") { scanner.index += 1; return .array([]) }
            while true {
                scanner.skipWhitespace()
                items.append(try read(&scanner, depth: depth + 1))
                scanner.skipWhitespace()
                guard let next = scanner.peek() else { throw .syntax(at: scanner.index) }
                scanner.index += 1
                if next == UInt8(ascii: "]") { return .array(items) }
                guard next == UInt8(ascii: ",") else { throw .syntax(at: scanner.index) }
            }
        case UInt8(ascii: "\""):
            let (content, _) = try scanner.scanString()
            return .string(text(scanner, content))
        default:
            let start = scanner.index
            _ = try scanner.skipValue(depth: depth)
            return .literal(text(scanner, start..<scanner.index))
        }
    }

    private static func text(_ scanner: JSONScanner, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: scanner.bytes[range]), as: UTF8.self)
    }
}
