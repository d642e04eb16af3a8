import CTollgateZlib
import NIOCore
import TollgateHTTP1

/// Inflates a gzip or deflate body, never past a limit: a client's 1 KB body that would
/// inflate to gigabytes, or a node's zip bomb, costs at most `limit` bytes of memory and the
/// CPU to produce them, then is refused.
///
/// zlib directly rather than compress-nio's decompressor, which returns what it has when the
/// input ends early: a truncated body must be refused, not answered from half a JSON document.
public enum Inflater {
    public enum Failure: Error, Equatable {
        /// The decoded bytes would pass the limit.
        case tooLarge
        /// Not a complete, valid stream of the coding it claims (truncated, corrupt, bad CRC).
        case corrupt
    }

    /// The whole decoded body. `deflate` is the zlib format (RFC 9110); a raw deflate stream,
    /// which some old servers send under that name, is accepted too. A gzip body of several
    /// members (RFC 1952 §2.2) decodes to their concatenation.
    public static func inflate(
        _ input: ByteBuffer, coding: HTTP1ContentCoding, limit: Int, allocator: ByteBufferAllocator
    ) throws(Failure) -> ByteBuffer {
        switch coding {
        case .identity:
            guard input.readableBytes <= limit else { throw .tooLarge }
            return input
        case .unsupported:
            throw .corrupt
        case .gzip:
            return try run(input, windowBits: 15 + 16, limit: limit, allocator: allocator)
        case .deflate:
            do {
                return try run(input, windowBits: 15, limit: limit, allocator: allocator)
            } catch .corrupt {
                return try run(input, windowBits: -15, limit: limit, allocator: allocator)
            }
        }
    }

    private static func run(_ input: ByteBuffer, windowBits: Int32, limit: Int, allocator: ByteBufferAllocator) throws(Failure) -> ByteBuffer {
        // zlib keeps pointers into the stream: it must not move while in use.
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            inflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }
        guard CTollgateZlib_inflateInit2(stream, windowBits) == Z_OK else { throw .corrupt }
        // A guess of 4×, at least a page, at most one byte past the limit (which tells "too large").
        var output = allocator.buffer(capacity: min(limit + 1, max(4096, input.readableBytes * 4)))
        let outcome: Failure? = input.withUnsafeReadableBytes { raw -> Failure? in
            guard let base = raw.baseAddress else { return .corrupt }
            stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = UInt32(raw.count)
            while true {
                let room = limit + 1 - output.readableBytes
                if room <= 0 { return .tooLarge }
                if output.writableBytes == 0 {
                    output.reserveCapacity(minimumWritableBytes: min(room, max(4096, output.capacity)))
                }
                var status: Int32 = Z_OK
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: 1) { destination in
                    let offered = min(destination.count, room)
                    stream.pointee.next_out = destination.baseAddress!.assumingMemoryBound(to: Bytef.self)
                    stream.pointee.avail_out = UInt32(offered)
                    status = CTollgateZlib.inflate(stream, Z_NO_FLUSH)
                    return offered - Int(stream.pointee.avail_out)
                }
                switch status {
                case Z_STREAM_END:
                    // Another gzip member may follow; anything else after the end is garbage.
                    guard stream.pointee.avail_in > 0 else { return nil }
                    guard windowBits > 15, inflateReset(stream) == Z_OK else { return .corrupt }
                case Z_OK:
                    // Input used up short of the stream's end: truncated.
                    if stream.pointee.avail_in == 0, stream.pointee.avail_out > 0 { return .corrupt }
                case Z_BUF_ERROR:
                    if stream.pointee.avail_in == 0 { return .corrupt }
                default:
                    return .corrupt
                }
            }
        }
        if let outcome { throw outcome }
        // The last call may have filled the one byte past the limit and ended the stream.
        guard output.readableBytes <= limit else { throw .tooLarge }
        return output
    }
}
