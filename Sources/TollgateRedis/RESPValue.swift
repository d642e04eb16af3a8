import NIOCore

/// A value on the wire of Redis' protocol, RESP2 or RESP3.
///
/// Bulk strings stay `ByteBuffer`s: Redis values are bytes, and most of what Tollgate reads
/// (counters, script results) is turned into a number without ever becoming a `String`.
public indirect enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    /// nil is RESP2's null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// nil is RESP2's null array (`*-1`).
    case array([RESPValue]?)
    /// RESP3 `_`.
    case null
    case double(Double)
    case boolean(Bool)
    case bigNumber(String)
    case verbatim(format: String, text: String)
    case map([(RESPValue, RESPValue)])
    case set([RESPValue])
    /// RESP3 out-of-band data (pub/sub messages, invalidations).
    case push([RESPValue])
    /// RESP3 `|` attributes preceding a reply, kept with it.
    case attribute([(RESPValue, RESPValue)], RESPValue)

    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        switch (lhs, rhs) {
        case (.simpleString(let a), .simpleString(let b)), (.error(let a), .error(let b)), (.bigNumber(let a), .bigNumber(let b)):
            return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.bulkString(let a), .bulkString(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.null, .null): return true
        case (.double(let a), .double(let b)): return a == b || (a.isNaN && b.isNaN)
        case (.boolean(let a), .boolean(let b)): return a == b
        case (.verbatim(let f1, let t1), .verbatim(let f2, let t2)): return f1 == f2 && t1 == t2
        case (.map(let a), .map(let b)): return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.set(let a), .set(let b)), (.push(let a), .push(let b)): return a == b
        case (.attribute(let a, let x), .attribute(let b, let y)):
            return x == y && a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// A bulk string from text.
    public static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// The value as text: simple, bulk and verbatim strings, numbers.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): return text
        case .bulkString(let buffer?): return String(buffer: buffer)
        case .verbatim(_, let text): return text
        case .integer(let value): return String(value)
        case .double(let value): return String(value)
        case .attribute(_, let value): return value.string
        default: return nil
        }
    }

    /// The value as an integer: integers, and strings holding one (RESP2 sends counters either way).
    public var int: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulkString(let buffer?): return Int64(String(buffer: buffer))
        case .simpleString(let text): return Int64(text)
        case .attribute(_, let value): return value.int
        default: return nil
        }
    }

    /// Elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let values?), .set(let values), .push(let values): return values
        case .attribute(_, let value): return value.elements
        default: return nil
        }
    }

    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): return true
        default: return false
        }
    }

    /// The error text when this is an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}
