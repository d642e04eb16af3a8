import NIOCore

/// A byte range inside a message head: where a value is, not a copy of it. Two `UInt16`s: a
/// head is at most `HTTP1Limits.headerBytesCeiling` bytes, and a request head holds some twenty
/// of these, so at four bytes each (not eight) it moves from stage to stage at half the cost.
public struct HTTP1Field: Sendable, Equatable {
    public var start: UInt16
    public var count: UInt16

    public init(_ start: Int, _ count: Int) {
        // The head scanner refuses a longer head before any field of it is made.
        assert(start >= 0 && count >= 0 && start + count <= HTTP1Limits.headerBytesCeiling, "field outside a head")
        self.start = UInt16(truncatingIfNeeded: start)
        self.count = UInt16(truncatingIfNeeded: count)
    }
}

/// Walks the field lines of a head (or a trailer section), validating each strictly and
/// handing name and value ranges to the caller. Shared by requests, responses and trailers.
enum HTTP1FieldLines {
    /// Parses `bytes[from..<end]`, which ends with the blank line's CRLF (or is just it).
    /// `body(nameStart, nameCount, valueStart, valueCount)` sees every field; returns how many.
    static func parse(
        _ bytes: UnsafeRawBufferPointer, from: Int, end: Int, maxFields: Int,
        _ body: (Int, Int, Int, Int) throws(HTTP1ParseError) -> Void
    ) throws(HTTP1ParseError) -> Int {
        var line = from
        var fields = 0
        while true {
            // Every line ends in CRLF: the scanner refused bare LFs already.
            guard let lf = HTTP1HeadScanner.find(HTTP1Syntax.lf, in: bytes, from: line), lf < end else { throw .malformed(.bareLF) }
            let lineEnd = lf - 1  // the CR
            if lineEnd == line { return fields }
            let first = bytes[line]
            if HTTP1Syntax.isWhitespace(first) { throw .malformed(.obsFold) }
            var colon = line
            while colon < lineEnd, HTTP1Syntax.isToken(bytes[colon]) { colon += 1 }
            guard colon < lineEnd, bytes[colon] == UInt8(ascii: ":") else {
                if colon < lineEnd, HTTP1Syntax.isWhitespace(bytes[colon]) { throw .malformed(.whitespaceBeforeColon) }
                throw .malformed(.headerName)
            }
            guard colon > line else { throw .malformed(.headerName) }
            var valueStart = colon + 1
            var valueEnd = lineEnd
            while valueStart < valueEnd, HTTP1Syntax.isWhitespace(bytes[valueStart]) { valueStart += 1 }
            while valueEnd > valueStart, HTTP1Syntax.isWhitespace(bytes[valueEnd - 1]) { valueEnd -= 1 }
            for index in valueStart..<valueEnd where !HTTP1Syntax.isFieldValue(bytes[index]) {
                throw .malformed(.headerValue)
            }
            fields += 1
            if fields > maxFields { throw .tooManyHeaders }
            try body(line, colon - line, valueStart, valueEnd - valueStart)
            line = lf + 1
        }
    }
}

/// How a message's body is delimited, read from its framing headers (RFC 9112 §6).
struct HTTP1Framing {
    var contentLength: Int?
    var chunked = false
    var transferEncodings = 0
    var close = false
    var keepAlive = false
    var upgrade = false

    /// Content-Length: 1*DIGIT, once. A list ("5, 5") or a second line is refused: two
    /// parsers in a chain that pick different values is how requests are smuggled.
    mutating func contentLength(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int) throws(HTTP1ParseError) {
        guard contentLength == nil else { throw .malformed(.duplicateContentLength) }
        guard let value = HTTP1Syntax.decimal(bytes, start, count) else { throw .malformed(.contentLength) }
        contentLength = value
    }

    /// Transfer-Encoding: only `chunked`, last, and alone; one field line.
    mutating func transferEncoding(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int) throws(HTTP1ParseError) {
        transferEncodings += 1
        guard transferEncodings == 1 else { throw .malformed(.duplicateTransferEncoding) }
        var codings = 0
        var lastIsChunked = false
        var other = false
        HTTP1Syntax.forEachListElement(bytes, start, start + count) { a, n in
            codings += 1
            lastIsChunked = HTTP1Syntax.equalsIgnoringCase(bytes, a, n, "chunked")
            if !lastIsChunked { other = true }
        }
        guard codings > 0, lastIsChunked else { throw .malformed(.chunkedNotLast) }
        guard !other, codings == 1 else { throw .unsupportedTransferCoding }
        chunked = true
    }

    mutating func connection(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int) {
        HTTP1Syntax.forEachListElement(bytes, start, start + count) { a, n in
            if HTTP1Syntax.equalsIgnoringCase(bytes, a, n, "close") { close = true }
            if HTTP1Syntax.equalsIgnoringCase(bytes, a, n, "keep-alive") { keepAlive = true }
            if HTTP1Syntax.equalsIgnoringCase(bytes, a, n, "upgrade") { upgrade = true }
        }
    }

    /// Both framings at once is refused outright (RFC 9112 §6.3 allows a server to; a proxy should).
    func check(minorVersion: Int) throws(HTTP1ParseError) {
        if chunked, contentLength != nil { throw .malformed(.lengthAndChunked) }
        if transferEncodings > 0, minorVersion == 0 { throw .malformed(.transferEncodingInHTTP10) }
    }

    /// HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked to keep alive.
    func persists(minorVersion: Int) -> Bool {
        !close && (minorVersion == 1 || keepAlive)
    }
}
