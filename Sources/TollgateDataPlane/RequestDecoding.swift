import NIOCore
import TollgateCompression
import TollgateHTTP1
import TollgateJSONRPC

/// Stage 3a, decode: a request body sent with `Content-Encoding: gzip` (or deflate) inflated
/// before anything reads it (pure). The plan's body limit applies to the inflated size, and
/// inflating stops one byte past it: a 1 KB body that would inflate to gigabytes costs the
/// limit at most, then 413. A body in a coding Tollgate cannot decode is refused with 415
/// and `Accept-Encoding` naming those it can (RFC 9110 §15.5.16).
enum RequestDecoding {
    /// The body to read: as it came (identity), or inflated.
    static func decode(_ head: HTTP1RequestHead, body: ByteBuffer, limit: Int, allocator: ByteBufferAllocator) -> Result<ByteBuffer, Refusal> {
        let coding = head.bodyCoding
        guard coding != .identity else { return .success(body) }
        guard coding != .unsupported else {
            var refusal = Refusal(.unsupportedMediaType, RPCError.invalidRequest,
                "Content-Encoding \(head.string(head.contentEncoding) ?? "") is not supported; send gzip, deflate or identity")
            refusal.acceptEncoding = true
            return .failure(refusal)
        }
        do {
            return .success(try Inflater.inflate(body, coding: coding, limit: limit, allocator: allocator))
        } catch .tooLarge {
            return .failure(Refusal(.payloadTooLarge, RPCError.invalidRequest, "\(coding.name) body inflates past the plan's \(limit) bytes"))
        } catch {
            return .failure(Refusal(.badRequest, RPCError.parseError, "\(coding.name) body is corrupt or truncated"))
        }
    }
}
