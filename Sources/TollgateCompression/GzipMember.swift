import CTollgateZlib
import NIOCore

/// A cached answer's gzip form, kept in two parts so that each hit gets a valid gzip member
/// with its caller's id in it without compressing anything again.
///
/// A JSON-RPC answer is `{"jsonrpc":"2.0","id":` + id + `,"result":…}`: a few bytes before the
/// id, and everything that matters after it. The part after the id is deflated once, as a
/// raw deflate stream that ends in the final block; a hit writes the gzip header, the bytes
/// before the id and the caller's id as a stored (uncompressed) block, that deflated tail,
/// and the trailer, whose CRC-32 is combined from the parts' CRCs (zlib's `crc32_combine`)
/// instead of being computed over the whole answer. Deflate blocks may follow one another at
/// any byte boundary, and the tail's back-references never reach before its own start, so
/// the result is one ordinary gzip member (RFC 1951 §3.2.3, RFC 1952 §2.3).
public struct GzipMember: Sendable {
    /// The answer's bytes before the id, as they are (a slice of the cached answer).
    public let head: ByteBuffer
    /// The id the answer was stored with (a slice of it): the answer's own gzip form is
    /// `member(id: storedID)`, for the request whose miss stored it.
    public let storedID: ByteBuffer
    /// The bytes after the id, raw-deflated, ending with the final block.
    public let tail: ByteBuffer
    let tailCRC: UInt32
    let tailCount: Int

    /// Bytes this form adds to the cache entry.
    public var size: Int { tail.readableBytes }

    /// Deflates the part of `answer` after `id` with `compressor` (raw deflate). nil when that
    /// would not make the answer smaller.
    public init?(answer: ByteBuffer, id: Range<Int>, compressor: AnswerCompressor, allocator: ByteBufferAllocator) {
        guard let head = answer.getSlice(at: answer.readerIndex, length: id.lowerBound),
            let storedID = answer.getSlice(at: answer.readerIndex + id.lowerBound, length: id.count),
            let after = answer.getSlice(at: answer.readerIndex + id.upperBound, length: answer.readableBytes - id.upperBound),
            let tail = compressor.rawDeflate(after, allocator: allocator), tail.readableBytes + 64 < after.readableBytes
        else { return nil }
        self.head = head
        self.storedID = storedID
        self.tail = tail
        tailCRC = Self.crc(after)
        tailCount = after.readableBytes
    }

    /// The whole answer as one gzip member, with `id` (the caller's id bytes; nil: `null`).
    public func member(id: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var verbatim = allocator.buffer(capacity: head.readableBytes + (id?.readableBytes ?? 4))
        verbatim.writeImmutableBuffer(head)
        if let id { verbatim.writeImmutableBuffer(id) } else { verbatim.writeStaticString("null") }
        let count = verbatim.readableBytes
        var out = allocator.buffer(capacity: 10 + count + 5 * (count / 65_535 + 1) + tail.readableBytes + 8)
        // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown
        out.writeBytes([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF])
        // Stored blocks, not final: BFINAL=0, BTYPE=00, padded to the byte; LEN, NLEN.
        var rest = verbatim
        repeat {
            let length = min(rest.readableBytes, 65_535)
            out.writeInteger(UInt8(0))
            out.writeInteger(UInt16(length), endianness: .little)
            out.writeInteger(~UInt16(length), endianness: .little)
            out.writeImmutableBuffer(rest.readSlice(length: length)!)
        } while rest.readableBytes > 0
        out.writeImmutableBuffer(tail)
        let crc = UInt32(CTollgateZlib_crc32_combine(UInt(Self.crc(verbatim)), UInt(tailCRC), tailCount))
        out.writeInteger(crc, endianness: .little)
        out.writeInteger(UInt32(truncatingIfNeeded: count + tailCount), endianness: .little)
        return out
    }

    static func crc(_ bytes: ByteBuffer) -> UInt32 {
        bytes.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            return UInt32(crc32(0, base.assumingMemoryBound(to: Bytef.self), uInt(raw.count)))
        }
    }
}
