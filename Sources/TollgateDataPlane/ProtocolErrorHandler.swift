import NIOCore
import NIOHTTP1
import TollgateJSONRPC

/// Answers HTTP parse errors with a JSON-RPC error body, then lets the decoder close the
/// connection. Modelled on NIO's `HTTPServerProtocolErrorHandler`, which sends an empty 400.
/// The gateway writes each response in one go, so this answer never lands inside another.
final class ProtocolErrorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        let tooLarge = parserError == .headerOverflow
        let body = RPCErrorWriter.body(
            RPCError(code: RPCError.invalidRequest, message: tooLarge ? "request headers too large" : "malformed HTTP request"),
            id: nil, in: nil)
        var buffer = context.channel.allocator.buffer(capacity: 160 + body.count)
        ResponseHead.start(tooLarge ? .requestHeaderFieldsTooLarge : .badRequest, version: .http1_1, into: &buffer)
        ResponseHead.header("Connection", "close", into: &buffer)
        ResponseHead.header("Content-Type", "application/json", into: &buffer)
        ResponseHead.header("Content-Length", decimal: body.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(body)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        context.fireErrorCaught(error)
    }
}
