import NIOCore

/// The writing half of Tollgate's HTTP/1.1 framing: the few byte-level pieces both sides
/// share (the gateway's response heads, the requests to nodes). Heads are built from known-good
/// parts (numbers, validated request IDs, values the parser accepted), so nothing here
/// validates: it only writes.
extension ByteBuffer {
    /// A non-negative decimal without making a String.
    public mutating func writeDecimal(_ value: Int) {
        writeHead(reserving: 20) { $0.writeDecimal(value) }
    }

    /// `name: value\r\n`, for a value made at run time (labelled like `HTTP1HeadWriter.write(string:)`,
    /// so that a literal value takes the `StaticString` overload).
    public mutating func writeHeader(_ name: StaticString, string value: String) {
        writeHead(reserving: name.utf8CodeUnitCount + value.utf8.count + 4) { $0.header(name, string: value) }
    }

    /// `name: value\r\n`, for a value known at compile time.
    public mutating func writeHeader(_ name: StaticString, _ value: StaticString) {
        writeHead(reserving: name.utf8CodeUnitCount + value.utf8CodeUnitCount + 4) { $0.header(name, value) }
    }

    /// `name: decimal\r\n`.
    public mutating func writeHeader(_ name: StaticString, decimal value: Int) {
        writeHead(reserving: name.utf8CodeUnitCount + HTTP1HeadWriter.decimalHeaderExtra) { $0.header(name, decimal: value) }
    }
}
