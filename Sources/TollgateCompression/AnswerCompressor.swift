import CompressNIO
import NIOCore
import TollgateHTTP1

/// Compresses answers toward clients that accept it, one per event loop: zlib's state (a few
/// hundred KB) is made once and reset between answers, so compressing allocates only the
/// output buffer.
///
/// Not thread-safe, by design: each loop owns one and uses it between two of its own events.
public final class AnswerCompressor {
    /// Answers below this many bytes go out as they are (a gzip header and trailer alone are
    /// 18 bytes, and a small answer is one TCP segment either way).
    public let minimumBytes: Int
    private let level: Int32
    private var gzip: ZlibCompressor?
    private var deflate: ZlibCompressor?
    private var raw: ZlibCompressor?

    /// `level` 1 (fastest; JSON compresses well even so) to 9.
    public init(minimumBytes: Int = 1024, level: Int = 1) {
        self.minimumBytes = minimumBytes
        self.level = Int32(max(1, min(9, level)))
    }

    /// The body in `coding`, or nil when it should go as it is (too small, no gain, a zlib
    /// failure: never worth failing an answer over).
    public func compress(_ body: ByteBuffer, coding: HTTP1ContentCoding, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard body.readableBytes >= minimumBytes, let compressor = compressor(for: coding),
            let output = Self.deflate(body, with: compressor, allocator: allocator)
        else { return nil }
        return output.readableBytes < body.readableBytes ? output : nil
    }

    /// `bytes` as raw deflate (no header or trailer), ending with the final block: the tail of
    /// a `GzipMember`. nil on a zlib failure.
    func rawDeflate(_ bytes: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        if raw == nil { raw = try? ZlibCompressor(algorithm: .deflate, configuration: ZlibConfiguration(compressionLevel: level)) }
        guard let raw else { return nil }
        return Self.deflate(bytes, with: raw, allocator: allocator)
    }

    /// One whole stream from a reset compressor; nil on a zlib failure.
    private static func deflate(_ bytes: ByteBuffer, with compressor: ZlibCompressor, allocator: ByteBufferAllocator) -> ByteBuffer? {
        var input = bytes
        var output = allocator.buffer(capacity: compressor.maxSize(from: input))
        do {
            try compressor.reset()
            try compressor.deflate(from: &input, to: &output, flush: .finish)
        } catch {
            return nil
        }
        return output
    }

    private func compressor(for coding: HTTP1ContentCoding) -> ZlibCompressor? {
        let configuration = ZlibConfiguration(compressionLevel: level)
        switch coding {
        case .gzip:
            if gzip == nil { gzip = try? ZlibCompressor(algorithm: .gzip, configuration: configuration) }
            return gzip
        case .deflate:
            if deflate == nil { deflate = try? ZlibCompressor(algorithm: .zlib, configuration: configuration) }
            return deflate
        case .identity, .unsupported:
            return nil
        }
    }
}
