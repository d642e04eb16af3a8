import NIOCore
import NIOHTTP1

/// One keep-alive HTTP/1.1 connection to a node, owned by the event loop it runs on.
///
/// Carries one request at a time. The pool hands it out, and takes it back when the
/// response said the connection may be reused.
final class UpstreamConnection {
    let channel: any Channel
    let node: UpstreamNode
    private let handler: UpstreamResponseHandler

    init(channel: any Channel, node: UpstreamNode, handler: UpstreamResponseHandler) {
        self.channel = channel
        self.node = node
        self.handler = handler
    }

    var isActive: Bool { channel.isActive }

    /// Sends `request`; `completion` runs on the channel's loop once the whole response is in,
    /// or the exchange failed or timed out.
    func send(
        _ request: UpstreamRequest, timeout: TimeAmount, maxResponseBytes: Int,
        completion: @escaping (Result<UpstreamResponseHandler.Response, UpstreamResponseHandler.ExchangeError>) -> Void
    ) {
        let handler = self.handler
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            handler.fail(.timeout)
            channel.close(promise: nil)
        }
        handler.expect(maxResponseBytes: maxResponseBytes) { result in
            timer.cancel()
            completion(result)
        }
        // The response decoder only needs to see that a POST went out; the bytes on the wire are
        // the node's prebuilt request line and headers plus this request's, then the body.
        var bytes = channel.allocator.buffer(capacity: node.requestPrefix.readableBytes + 96 + request.body.readableBytes)
        bytes.writeImmutableBuffer(node.requestPrefix)
        bytes.writeStaticString("Content-Length: ")
        bytes.writeString(String(request.body.readableBytes))
        bytes.writeStaticString("\r\nX-Request-ID: ")
        bytes.writeString(request.requestID)
        if let traceparent = request.traceparent {
            bytes.writeStaticString("\r\ntraceparent: ")
            bytes.writeString(traceparent)
            if let tracestate = request.tracestate {
                bytes.writeStaticString("\r\ntracestate: ")
                bytes.writeString(tracestate)
            }
        }
        bytes.writeStaticString("\r\n\r\n")
        bytes.writeImmutableBuffer(request.body)
        channel.write(HTTPClientRequestPart.head(Self.postHead), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.body(.byteBuffer(bytes)), promise: nil)
    }

    /// What the response decoder is shown for every request: only the method matters to it.
    static let postHead = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")
}

/// Sits between the socket and the response decoder on an upstream connection: drops the
/// request heads (shown to the decoder only) and passes the prebuilt request bytes through.
final class RequestBytesWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head, .end:
            promise?.succeed(())
        case .body(.byteBuffer(let bytes)):
            context.write(wrapOutboundOut(bytes), promise: promise)
        case .body(.fileRegion):
            promise?.fail(ChannelError.operationUnsupported)
        }
    }
}

/// Collects one response at a time and hands it to the waiting callback.
final class UpstreamResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias Completion = (Result<Response, ExchangeError>) -> Void

    struct Response {
        var status: HTTPResponseStatus
        var body: ByteBuffer
        /// False when the node asked to close the connection after this response.
        var keepAlive: Bool
    }

    enum ExchangeError: Error {
        /// The connection closed before a full response: nothing (or not all) came back.
        case closed(beforeResponse: Bool)
        case timeout
        case tooLarge
    }

    private var completion: Completion?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var maxResponseBytes = Int.max
    /// Told when the channel goes away, so the pool drops it from its idle list.
    var onInactive: (() -> Void)?

    func expect(maxResponseBytes: Int, _ completion: @escaping Completion) {
        precondition(self.completion == nil, "one request at a time per upstream connection")
        self.completion = completion
        self.maxResponseBytes = maxResponseBytes
        head = nil
        body = nil
    }

    func fail(_ error: ExchangeError) {
        guard let completion else { return }
        self.completion = nil
        completion(.failure(error))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
        case .body(var chunk):
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
            if (body?.readableBytes ?? 0) > maxResponseBytes {
                fail(.tooLarge)
                context.close(promise: nil)
            }
        case .end:
            guard let completion, let head else { return }
            self.completion = nil
            let response = Response(
                status: head.status, body: body ?? context.channel.allocator.buffer(capacity: 0),
                keepAlive: head.isKeepAlive)
            self.head = nil
            self.body = nil
            completion(.success(response))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed(beforeResponse: head == nil))
        onInactive?()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.closed(beforeResponse: head == nil))
        context.close(promise: nil)
    }
}
