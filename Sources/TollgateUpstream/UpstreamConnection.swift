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

    /// Sends `request` and completes when the whole response has arrived.
    func send(
        _ request: UpstreamRequest, timeout: TimeAmount, maxResponseBytes: Int
    ) -> EventLoopFuture<UpstreamResponseHandler.Response> {
        let promise = channel.eventLoop.makePromise(of: UpstreamResponseHandler.Response.self)
        handler.expect(promise, maxResponseBytes: maxResponseBytes)
        let timer = channel.eventLoop.scheduleTask(in: timeout) { [handler, channel] in
            handler.fail(UpstreamResponseHandler.ExchangeError.timeout)
            channel.close(promise: nil)
        }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: node.path)
        head.headers.reserveCapacity(5)
        head.headers.add(name: "Host", value: node.hostHeader)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(request.body.readableBytes))
        head.headers.add(name: "X-Request-ID", value: request.requestID)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(request.body)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }
}

/// Collects one response at a time into a `Response`.
final class UpstreamResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

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

    private var promise: EventLoopPromise<Response>?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var maxResponseBytes = Int.max
    /// Told when the channel goes away, so the pool drops it from its idle list.
    var onInactive: (() -> Void)?

    func expect(_ promise: EventLoopPromise<Response>, maxResponseBytes: Int) {
        precondition(self.promise == nil, "one request at a time per upstream connection")
        self.promise = promise
        self.maxResponseBytes = maxResponseBytes
        head = nil
        body = nil
    }

    func fail(_ error: ExchangeError) {
        guard let promise else { return }
        self.promise = nil
        promise.fail(error)
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
            guard let promise, let head else { return }
            self.promise = nil
            let response = Response(
                status: head.status, body: body ?? context.channel.allocator.buffer(capacity: 0),
                keepAlive: head.isKeepAlive)
            self.head = nil
            self.body = nil
            promise.succeed(response)
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
