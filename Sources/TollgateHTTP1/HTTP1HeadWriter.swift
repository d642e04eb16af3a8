import NIOCore

/// Writes a whole HTTP/1.1 head (and a small body after it) into memory reserved once in a
/// `ByteBuffer`.
///
/// Each `ByteBuffer.write…` call checks capacity and uniqueness and may retain its storage; a
/// response head is twenty-odd pieces, so on the request path those checks cost more than
/// the copying (`bench/run`, `perf`). The caller reserves an upper bound of the head's size,
/// then this writer only copies. Every append checks that it stays inside the reservation:
/// a wrong bound traps rather than writes past it.
///
/// The fixed pieces (`write(_: StaticString)`, the `header` lines) are inlinable: in the
/// caller, a literal's length is a constant and the copy becomes a few moves. Called, each was
/// a `memcpy` of two to fifteen bytes, some thirty per response (counted by uprobe,
/// docs/benchmarks.md, eleventh session).
public struct HTTP1HeadWriter: ~Copyable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let capacity: Int
    @usableFromInline var written = 0

    /// Bytes written so far.
    public var count: Int { written }

    init(_ raw: UnsafeMutableRawBufferPointer) {
        base = raw.baseAddress!
        capacity = raw.count
    }

    @inlinable @inline(__always)
    mutating func append(_ source: UnsafeRawPointer, _ length: Int) {
        precondition(length <= capacity - written, "head larger than its reserved size")
        (base + written).copyMemory(from: source, byteCount: length)
        written += length
    }

    @inlinable @inline(__always)
    public mutating func write(_ text: StaticString) {
        append(text.utf8Start, text.utf8CodeUnitCount)
    }

    /// A labelled overload: unlabelled, a string literal would pick it over the `StaticString`
    /// one (`String` is the default literal type) and retain and release per piece.
    public mutating func write(string text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let address = bytes.baseAddress else { return }
        append(address, bytes.count)
    }

    /// The buffer's readable bytes, which it keeps.
    public mutating func write(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { write($0) }
    }

    @inlinable @inline(__always)
    public mutating func writeByte(_ byte: UInt8) {
        precondition(written < capacity, "head larger than its reserved size")
        base.storeBytes(of: byte, toByteOffset: written, as: UInt8.self)
        written += 1
    }

    /// A non-negative decimal (at most 20 bytes; a negative value writes "0"), its digits
    /// stored in place from the last.
    public mutating func writeDecimal(_ value: Int) {
        guard value > 0 else { return writeByte(UInt8(ascii: "0")) }
        var digits = 1
        var rest = value
        while rest >= 10 {
            rest /= 10
            digits += 1
        }
        precondition(digits <= capacity - written, "head larger than its reserved size")
        var index = written + digits
        rest = value
        while rest > 0 {
            index -= 1
            base.storeBytes(of: UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10), toByteOffset: index, as: UInt8.self)
            rest /= 10
        }
        written += digits
    }

    /// `name: value\r\n`, for a value made at run time (labelled for the reason `write(string:)` is).
    @inlinable @inline(__always)
    public mutating func header(_ name: StaticString, string value: String) {
        write(name)
        write(": ")
        write(string: value)
        write("\r\n")
    }

    /// `name: value\r\n`, for a value known at compile time.
    @inlinable @inline(__always)
    public mutating func header(_ name: StaticString, _ value: StaticString) {
        write(name)
        write(": ")
        write(value)
        write("\r\n")
    }

    /// `name: decimal\r\n`.
    @inlinable @inline(__always)
    public mutating func header(_ name: StaticString, decimal value: Int) {
        write(name)
        write(": ")
        writeDecimal(value)
        write("\r\n")
    }

    /// The most a `header(_:decimal:)` line adds beside its name: ": ", 20 digits, CRLF.
    public static let decimalHeaderExtra = 24
}

extension ByteBuffer {
    /// Reserves `reserving` bytes (an upper bound of what `write` adds), lets `write` fill them
    /// and moves the writer index past what it wrote: one capacity and uniqueness check for
    /// the whole head.
    public mutating func writeHead(reserving size: Int, _ write: (inout HTTP1HeadWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var writer = HTTP1HeadWriter(raw)
            write(&writer)
            return writer.count
        }
    }
}
