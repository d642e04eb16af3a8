import NIOCore
import NIOHTTP1
import TollgateCompression
import TollgateJSONRPC

/// An answer's gzip form made before the reply (a node's own gzip bytes, a cached answer's
/// gzip member): sent as it is to a client that accepts gzip, instead of compressing `body`.
enum GzipForm {
    case bytes(ByteBuffer)
    /// Assembled only when the client accepts gzip: the caller's id (nil: `null`) in place.
    case member(GzipMember, id: ByteBuffer?)

    func bytes(allocator: ByteBufferAllocator) -> ByteBuffer {
        switch self {
        case .bytes(let bytes): bytes
        case .member(let member, let id): member.member(id: id, allocator: allocator)
        }
    }
}

/// A response ready to write, plus what the request came to for metrics and telemetry.
struct GatewayReply {
    var status: HTTPResponseStatus
    var body: ByteBuffer
    var headers: HTTPHeaders
    /// The JSON-RPC error code of a gateway-made error, for telemetry.
    var rpcErrorCode: Int?
    /// Why the request was refused, for the log line (`nil` when it was served).
    var refusal: String?
    /// `body` already gzipped, when it came that way; nil: compressed here if at all.
    var gzipped: GzipForm?

    init(
        status: HTTPResponseStatus, body: ByteBuffer, headers: HTTPHeaders = HTTPHeaders(), rpcErrorCode: Int? = nil, refusal: String? = nil,
        gzipped: GzipForm? = nil
    ) {
        self.status = status
        self.body = body
        self.headers = headers
        self.rpcErrorCode = rpcErrorCode
        self.refusal = refusal
        self.gzipped = gzipped
    }

    /// A gateway-made error: a JSON-RPC error object echoing the request's id where known.
    static func error(
        _ status: HTTPResponseStatus, _ error: RPCError, id: Range<Int>? = nil, request: ByteBuffer? = nil,
        allocator: ByteBufferAllocator
    ) -> GatewayReply {
        let bytes = RPCErrorWriter.body(error, id: id, in: request)
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return GatewayReply(status: status, body: buffer, rpcErrorCode: error.code, refusal: error.message)
    }
}
