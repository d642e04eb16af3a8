import NIOCore
import NIOHTTP1
import TollgateHTTP1

/// Writes the gateway's response heads as bytes.
///
/// The gateway only ever sends its own, known-good headers (values are numbers, validated
/// request IDs, or header values the request parser already accepted), so it skips
/// `HTTPResponseEncoder` and its per-header validation: one buffer, written with the body.
enum ResponseHead {
    static func start(_ status: HTTPResponseStatus, version: HTTPVersion, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(version.minor == 0 && version.major == 1 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeDecimal(Int(status.code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(status.reasonPhrase)
        buffer.writeStaticString("\r\n")
    }
}
