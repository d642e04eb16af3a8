import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import TollgateHTTP1
import TollgateJSONRPC

/// The WebSocket hand-over (RFC 6455 §4.2): which heads ask for it, whether they ask
/// correctly, and the 101 that accepts. Pure: the head's bytes in, a refusal or bytes out.
/// The key and plan are checked by the pipeline in between, as for any HTTP request.
enum WebSocketUpgrade {
    /// A GET that asks to become a WebSocket (`Upgrade: websocket`): the rest of it is then
    /// checked by `refusal`, and it is never served as HTTP.
    static func isRequested(_ head: HTTP1RequestHead) -> Bool {
        head.method == .get && head.upgrade != nil && head.withBytes(head.upgrade!) { HTTP1Syntax.listContains($0, "websocket") }
    }

    /// What is wrong with an upgrade request, before anyone is asked about the key.
    static func refusal(_ head: HTTP1RequestHead) -> Refusal? {
        guard head.connectionUpgrade else {
            return Refusal(.badRequest, RPCError.invalidRequest, "a WebSocket upgrade needs Connection: Upgrade")
        }
        guard head.minorVersion == 1 else {
            return Refusal(.badRequest, RPCError.invalidRequest, "a WebSocket upgrade needs HTTP/1.1")
        }
        guard head.field(head.webSocketVersion, equalsIgnoringCase: "13") else {
            var refusal = Refusal(.upgradeRequired, RPCError.invalidRequest, "Sec-WebSocket-Version must be 13")
            refusal.webSocketVersion = true
            return refusal
        }
        guard let key = head.webSocketKey, head.withBytes(key, { isNonce($0) }) else {
            return Refusal(.badRequest, RPCError.invalidRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
        }
        return nil
    }

    /// The 101 that completes the hand-over, with the request ID the connection's calls keep.
    static func accept(_ head: HTTP1RequestHead, requestID: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let key = head.string(head.webSocketKey!)
        let digest = Insecure.SHA1.hash(data: Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))
        let accept = Data(digest).base64EncodedString()
        var buffer = allocator.buffer(capacity: 192)
        buffer.writeStaticString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        buffer.writeHeader("Sec-WebSocket-Accept", string: accept)
        buffer.writeHeader("X-Request-ID", string: requestID)
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// 24 base64 characters ending in "==" (16 bytes), as §4.1 requires of the client.
    static func isNonce(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[0..<22].allSatisfy { byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
        }
    }
}
