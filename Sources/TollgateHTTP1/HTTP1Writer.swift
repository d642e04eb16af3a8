import NIOCore

/// The writing half of Tollgate's HTTP/1.1 framing: the few byte-level pieces both sides
/// share (the gateway's response heads, the requests to nodes). Heads are built from known-good
/// parts (numbers, validated request IDs, values the parser accepted), so nothing here
/// validates: it only writes.
extension ByteBuffer {
    /// A non-negative decimal without making a String.
    public mutating func writeDecimal(_ value: Int) {
        guard value > 0 else {
            writeInteger(UInt8(ascii: "0"))
            return
        }
        // Int.max has 19 digits; write them backwards into a stack buffer.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var index = raw.count
            var rest = value
            while rest > 0 {
                index -= 1
                raw[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }

    /// `name: value\r\n`.
    public mutating func writeHeader(_ name: StaticString, _ value: String) {
        writeStaticString(name)
        writeStaticString(": ")
        writeString(value)
        writeStaticString("\r\n")
    }

    /// `name: value\r\n`, for a value known at compile time.
    public mutating func writeHeader(_ name: StaticString, _ value: StaticString) {
        writeStaticString(name)
        writeStaticString(": ")
        writeStaticString(value)
        writeStaticString("\r\n")
    }

    /// `name: decimal\r\n`.
    public mutating func writeHeader(_ name: StaticString, decimal value: Int) {
        writeStaticString(name)
        writeStaticString(": ")
        writeDecimal(value)
        writeStaticString("\r\n")
    }
}
