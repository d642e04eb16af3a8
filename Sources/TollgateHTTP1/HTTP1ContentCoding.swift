/// A content coding (RFC 9110 §8.4.1) as Tollgate meets it: what a node's answer or a client's
/// body says it is, and what a client's `Accept-Encoding` lets the gateway send.
///
/// Only gzip and deflate are produced or decoded (zlib through compress-nio; no package here
/// provides brotli). `deflate` is the zlib format (RFC 1950), as RFC 9110 defines it.
public enum HTTP1ContentCoding: Sendable, Equatable {
    case identity
    case gzip
    case deflate
    /// A coding Tollgate cannot decode (br, zstd, a list of several): refused, never guessed at.
    case unsupported

    /// The coding a `Content-Encoding` value names. A list ("gzip, gzip") is unsupported:
    /// nobody sends one on purpose, and decoding it right would mean undoing each in turn.
    public static func of(_ bytes: UnsafeRawBufferPointer) -> HTTP1ContentCoding {
        var coding = HTTP1ContentCoding.identity
        var elements = 0
        HTTP1Syntax.forEachListElement(bytes, 0, bytes.count) { start, count in
            elements += 1
            if HTTP1Syntax.equalsIgnoringCase(bytes, start, count, "gzip") || HTTP1Syntax.equalsIgnoringCase(bytes, start, count, "x-gzip") {
                coding = .gzip
            } else if HTTP1Syntax.equalsIgnoringCase(bytes, start, count, "deflate") {
                coding = .deflate
            } else if HTTP1Syntax.equalsIgnoringCase(bytes, start, count, "identity") {
                coding = .identity
            } else {
                coding = .unsupported
            }
        }
        return elements > 1 ? .unsupported : coding
    }

    /// The coding to answer with, given the client's `Accept-Encoding`: gzip if acceptable,
    /// else deflate, else nil (send the bytes as they are). A coding is acceptable when it is
    /// listed, or `*` is, with a q-value above zero (RFC 9110 §12.5.3); `gzip;q=0` refuses gzip
    /// even when `*` is listed. Malformed q-values count as q=0: never compress on a guess.
    public static func negotiate(_ bytes: UnsafeRawBufferPointer) -> HTTP1ContentCoding? {
        var gzip: Bool?
        var deflate: Bool?
        var star: Bool?
        HTTP1Syntax.forEachListElement(bytes, 0, bytes.count) { start, count in
            var nameEnd = start
            let end = start + count
            while nameEnd < end, bytes[nameEnd] != UInt8(ascii: ";"), !HTTP1Syntax.isWhitespace(bytes[nameEnd]) { nameEnd += 1 }
            let accepted = acceptsWeight(bytes, from: nameEnd, to: end)
            let nameCount = nameEnd - start
            if HTTP1Syntax.equalsIgnoringCase(bytes, start, nameCount, "gzip") || HTTP1Syntax.equalsIgnoringCase(bytes, start, nameCount, "x-gzip") {
                gzip = accepted && (gzip ?? true)
            } else if HTTP1Syntax.equalsIgnoringCase(bytes, start, nameCount, "deflate") {
                deflate = accepted && (deflate ?? true)
            } else if nameCount == 1, bytes[start] == UInt8(ascii: "*") {
                star = accepted
            }
        }
        if gzip ?? star ?? false { return .gzip }
        if deflate ?? star ?? false { return .deflate }
        return nil
    }

    /// Whether the parameters after a coding's name (`;q=0.5`) leave it acceptable: q absent
    /// or above zero.
    static func acceptsWeight(_ bytes: UnsafeRawBufferPointer, from: Int, to end: Int) -> Bool {
        var index = from
        while index < end, HTTP1Syntax.isWhitespace(bytes[index]) { index += 1 }
        guard index < end else { return true }
        guard bytes[index] == UInt8(ascii: ";") else { return false }
        index += 1
        while index < end, HTTP1Syntax.isWhitespace(bytes[index]) { index += 1 }
        guard index + 1 < end, bytes[index] | 0x20 == UInt8(ascii: "q"), bytes[index + 1] == UInt8(ascii: "=") else { return false }
        index += 2
        // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
        guard index < end else { return false }
        let lead = bytes[index]
        index += 1
        var nonZero = lead == UInt8(ascii: "1")
        guard lead == UInt8(ascii: "0") || lead == UInt8(ascii: "1") else { return false }
        if index < end {
            guard bytes[index] == UInt8(ascii: ".") else { return false }
            index += 1
            var digits = 0
            while index < end, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                if bytes[index] != UInt8(ascii: "0") {
                    if lead == UInt8(ascii: "1") { return false }
                    nonZero = true
                }
                digits += 1
                index += 1
            }
            guard digits <= 3 else { return false }
            while index < end, HTTP1Syntax.isWhitespace(bytes[index]) { index += 1 }
            guard index == end else { return false }
        }
        return nonZero
    }

    /// The coding's name, for metric labels.
    public var name: String {
        switch self {
        case .identity: "identity"
        case .gzip: "gzip"
        case .deflate: "deflate"
        case .unsupported: "other"
        }
    }

    /// The `Content-Encoding` token for a coding Tollgate produces.
    public var token: StaticString {
        switch self {
        case .gzip: "gzip"
        case .deflate: "deflate"
        case .identity, .unsupported: "identity"
        }
    }
}
