/// The byte classes of RFC 9110 and RFC 9112, as 256-entry tables.
public enum HTTP1Syntax {
    static let cr: UInt8 = 0x0D
    static let lf: UInt8 = 0x0A
    static let sp: UInt8 = 0x20
    static let htab: UInt8 = 0x09

    // The classes are tests on the byte, not tables: a `static let` array costs a
    // `swift_once` on every read, and the parser reads one per byte of every head.

    /// tchar: what a method, a header name or a transfer coding may be made of
    /// (`!#$%&'*+-.^_`|~`, digits, letters), as a bitmap of the 128 ASCII bytes.
    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool {
        byte < 64 ? (0x03FF_6CFA_0000_0000 as UInt64) >> byte & 1 == 1
            : byte < 128 ? (0x57FF_FFFF_C7FF_FFFE as UInt64) >> (byte &- 64) & 1 == 1 : false
    }

    /// field-value bytes: visible ASCII, obs-text, SP and HTAB; never CR, LF, NUL or another CTL.
    @inline(__always)
    static func isFieldValue(_ byte: UInt8) -> Bool {
        byte == htab || (byte >= sp && byte != 0x7F)
    }

    /// request-target bytes: visible ASCII only. Anything else (spaces, controls, raw UTF-8)
    /// must be percent-encoded by the client (RFC 3986).
    @inline(__always)
    static func isTarget(_ byte: UInt8) -> Bool { byte &- 0x21 < 0x5E }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == sp || byte == htab }

    /// True when `bytes[start..<start+count]` is `lowercase` ignoring ASCII case (only A–Z are
    /// folded, so no other byte can make a false match).
    public static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int, _ lowercase: StaticString) -> Bool {
        guard count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for offset in 0..<count {
            var byte = bytes[start + offset]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            if byte != expected[offset] { return false }
        }
        return true
    }

    /// True when the comma-separated list (a field value) has `lowercase` as an element,
    /// ASCII case ignored: `Upgrade: websocket`, `Cache-Control: no-cache`.
    public static func listContains(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        var found = false
        forEachListElement(bytes, 0, bytes.count) { start, count in
            if !found, equalsIgnoringCase(bytes, start, count, lowercase) { found = true }
        }
        return found
    }

    /// Calls `body` with each element of a comma-separated list, OWS trimmed, empty ones skipped
    /// (RFC 9110 §5.6.1: recipients accept empty list elements).
    static func forEachListElement(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ body: (Int, Int) -> Void) {
        var index = start
        while index < end {
            var elementEnd = index
            while elementEnd < end, bytes[elementEnd] != UInt8(ascii: ",") { elementEnd += 1 }
            var a = index
            var b = elementEnd
            while a < b, isWhitespace(bytes[a]) { a += 1 }
            while b > a, isWhitespace(bytes[b - 1]) { b -= 1 }
            if b > a { body(a, b - a) }
            index = elementEnd + 1
        }
    }

    /// A decimal Content-Length; nil if it is not 1*DIGIT. Values past 2^62 saturate: they
    /// are over any body limit anyway.
    static func decimal(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int) -> Int? {
        guard count > 0 else { return nil }
        var value = 0
        for offset in 0..<count {
            let digit = bytes[start + offset] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value > (1 << 58) ? (1 << 62) : value * 10 + Int(digit)
        }
        return value
    }
}

/// Where the end of a message head is, found incrementally: a head that arrives in pieces is
/// scanned once, not once per piece.
struct HTTP1HeadScanner {
    /// Offset of the first byte of the line not yet seen whole.
    var lineStart = 0
    /// How far the current line has been searched for its LF (a long line arriving in pieces
    /// is searched once).
    var searched = 0

    enum Outcome {
        /// The head ends just before this offset (after its blank line).
        case complete(end: Int)
        case needMore
    }

    /// Looks for the blank line that ends the head in `bytes`, from where the last call stopped.
    mutating func scan(_ bytes: UnsafeRawBufferPointer, maxHeaderBytes: Int) throws(HTTP1ParseError) -> Outcome {
        var index = max(lineStart, searched)
        let count = bytes.count
        while index < count {
            guard let lf = Self.find(HTTP1Syntax.lf, in: bytes, from: index) else { break }
            guard lf > lineStart, bytes[lf - 1] == HTTP1Syntax.cr else { throw .malformed(.bareLF) }
            if lf - 1 == lineStart {
                guard lf + 1 <= maxHeaderBytes else { throw .headTooLarge }
                lineStart = 0
                searched = 0
                return .complete(end: lf + 1)
            }
            lineStart = lf + 1
            index = lf + 1
        }
        searched = count
        if count >= maxHeaderBytes { throw .headTooLarge }
        return .needMore
    }

    static func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress else { return nil }
        guard let hit = memchr(base + start, Int32(byte), bytes.count - start) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
