import NIOCore
import NIOHTTP1
import TollgateCompression
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC

/// Stage 7, respond: the reply as HTTP/1.1 bytes. The gateway writes only its own known-good
/// headers (numbers, validated request IDs, values the parser accepted), so the head is built
/// straight into one buffer; a small body travels in that buffer too (one iovec, one write).
enum Responder {
    static let exposedHeaders: StaticString = "X-Request-ID, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After"
    static let inlineBodyLimit = 2048

    /// The head (holding the body when small), the body to write after it if separate, and the
    /// body's bytes on the wire. `scratch` is a buffer to write the head into (the connection's
    /// previous one, cleared). `accepts` is the client's `Accept-Encoding`, read only for an
    /// answer big enough to compress: the answer then goes out in the coding it asks for, from
    /// the reply's ready gzip form when it has one, else compressed by the loop's `compressor`.
    static func encode(
        _ reply: inout GatewayReply, facts: RequestFacts, requestID: String, headRequest: Bool, minorVersion: Int, keepAlive: Bool,
        accepts: @autoclosure () -> HTTP1ContentCoding?, compressor: AnswerCompressor?, scratch: inout ByteBuffer?, allocator: ByteBufferAllocator
    ) -> (head: ByteBuffer, body: ByteBuffer?, bytesOut: Int, coding: HTTP1ContentCoding?) {
        var coding: HTTP1ContentCoding?
        var varies = false
        if let compressor, !headRequest, reply.body.readableBytes >= compressor.minimumBytes {
            varies = true
            if let wanted = accepts() {
                if wanted == .gzip, let ready = reply.gzipped {
                    reply.body = ready.bytes(allocator: allocator)
                    coding = .gzip
                } else if let compressed = compressor.compress(reply.body, coding: wanted, allocator: allocator) {
                    reply.body = compressed
                    coding = wanted
                }
            }
        }
        let bytesOut = reply.body.readableBytes
        let sendBody = !headRequest && bytesOut > 0
        let version = HTTPVersion(major: 1, minor: minorVersion == 0 ? 0 : 1)
        let inline = sendBody && bytesOut <= inlineBodyLimit
        let reason = reply.status.reasonPhrase
        var extra = 0
        for (name, value) in reply.headers { extra += name.utf8.count + value.utf8.count + 4 }
        // An upper bound of the head: the fixed lines below come to under 512 bytes.
        let size = 512 + reason.utf8.count + requestID.utf8.count + (facts.corsOrigin?.utf8.count ?? 0) + extra + (inline ? bytesOut : 0)
        var head: ByteBuffer
        if var reused = scratch {
            scratch = nil  // held by `reused` alone: clearing it does not copy
            reused.clear(minimumCapacity: size)
            head = reused
        } else {
            head = allocator.buffer(capacity: size)
        }
        head.writeHead(reserving: size) { head in
            head.write(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            head.writeDecimal(Int(reply.status.code))
            head.writeByte(UInt8(ascii: " "))
            head.write(string: reason)
            head.write("\r\n")
            head.header("Content-Type", "application/json")
            head.header("Content-Length", decimal: bytesOut)
            if let coding { head.header("Content-Encoding", coding.token) }
            head.header("X-Request-ID", string: requestID)
            if let limits = facts.rateLimit {
                head.header("RateLimit-Limit", decimal: limits.limit)
                head.header("RateLimit-Remaining", decimal: limits.remaining)
                head.header("RateLimit-Reset", decimal: limits.reset)
            }
            for (name, value) in reply.headers {
                head.write(string: name)
                head.write(": ")
                head.write(string: value)
                head.write("\r\n")
            }
            if let origin = facts.corsOrigin {
                head.header("Access-Control-Allow-Origin", string: origin)
                head.header("Vary", varies ? "Origin, Accept-Encoding" : "Origin")
                head.header("Access-Control-Expose-Headers", exposedHeaders)
            } else if varies {
                head.header("Vary", "Accept-Encoding")
            }
            if !keepAlive {
                head.header("Connection", "close")
            } else if version.minor == 0 {
                head.header("Connection", "keep-alive")
            }
            head.write("\r\n")
            if inline { head.write(reply.body) }
        }
        var body: ByteBuffer?
        if sendBody, !inline { body = reply.body }
        reply.body = ByteBuffer()
        return (head, body, sendBody ? bytesOut : 0, coding)
    }

    /// The answer to bytes that never became a request (malformed, too large, too slow): a
    /// JSON-RPC error with the connection's close.
    static func unframed(status: HTTPResponseStatus, message: String, requestID: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = RPCErrorWriter.body(RPCError(code: RPCError.invalidRequest, message: message), id: nil, in: nil)
        var buffer = allocator.buffer(capacity: 200 + body.count)
        ResponseHead.start(status, version: .http1_1, into: &buffer)
        buffer.writeHeader("Content-Type", "application/json")
        buffer.writeHeader("Content-Length", decimal: body.count)
        buffer.writeHeader("X-Request-ID", string: requestID)
        buffer.writeHeader("Connection", "close")
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(body)
        return buffer
    }

    /// The CORS preflight's answer (204) for an origin the key allows.
    static func preflight(_ head: HTTP1RequestHead, maxAge: Int, facts: inout RequestFacts, allocator: ByteBufferAllocator) -> GatewayReply {
        var reply = GatewayReply(status: .noContent, body: allocator.buffer(capacity: 0))
        facts.corsOrigin = head.string(head.origin)
        reply.headers.add(name: "Access-Control-Allow-Methods", value: "POST, OPTIONS")
        reply.headers.add(name: "Access-Control-Allow-Headers", value: "Content-Type, Authorization, X-API-Key, X-Request-ID, traceparent")
        reply.headers.add(name: "Access-Control-Max-Age", value: String(maxAge))
        return reply
    }
}
