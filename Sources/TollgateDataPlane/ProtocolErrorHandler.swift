import NIOCore
import NIOHTTP1
import TollgateJSONRPC

/// Answers HTTP parse errors with a JSON-RPC error body instead of an empty 400, then lets the
/// decoder close the connection. Modelled on NIO's `HTTPServerProtocolErrorHandler`.
final class ProtocolErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var responseOpen = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        if !responseOpen {
            let tooLarge = parserError == .headerOverflow
            let status: HTTPResponseStatus = tooLarge ? .requestHeaderFieldsTooLarge : .badRequest
            let message = tooLarge ? "request headers too large" : "malformed HTTP request"
            var body = context.channel.allocator.buffer(capacity: 96)
            body.writeBytes(RPCErrorWriter.body(RPCError(code: RPCError.invalidRequest, message: message), id: nil, in: nil))
            let headers = HTTPHeaders([
                ("Connection", "close"), ("Content-Type", "application/json"), ("Content-Length", String(body.readableBytes)),
            ])
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responseOpen = true
        case .end: responseOpen = false
        default: break
        }
        context.write(data, promise: promise)
    }
}
