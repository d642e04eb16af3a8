import NIOCore
import NIOHTTP1
import TollgateCompression
import TollgateHTTP1

/// One keep-alive HTTP/1.1 connection to a node, owned by the event loop it runs on.
///
/// Carries one request at a time. The pool hands it out, and takes it back when the
/// response said the connection may be reused.
final class UpstreamConnection {
    let channel: any Channel
    let node: UpstreamNode
    private let handler: UpstreamResponseHandler
    /// When the exchange in flight times out; nil while none is.
    private var deadline: NIODeadline?
    /// Whether a deadline timer is scheduled. One timer per connection, re-armed when it fires
    /// early, instead of one scheduled (and cancelled) task per request: exchanges end in
    /// order, so a timer set for an earlier deadline only has to look again.
    private var timerArmed = false
    /// The last request's bytes, kept to be written into again. The socket has normally taken
    /// them whole (and NIO dropped its reference) by the next request, so the buffer is held
    /// here alone and clearing it allocates nothing; if a write is still pending, clearing
    /// copies on write: correct, merely an allocation.
    private var scratch: ByteBuffer?

    init(channel: any Channel, node: UpstreamNode, handler: UpstreamResponseHandler) {
        self.channel = channel
        self.node = node
        self.handler = handler
    }

    private func arm(at deadline: NIODeadline) {
        timerArmed = true
        // Strong: the timer holds the connection at most until its deadline (a `weak` capture
        // would give the connection a side table and slow every retain of it).
        channel.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { self.deadlinePassed() }
    }

    private func deadlinePassed() {
        timerArmed = false
        guard let deadline else { return }
        if deadline <= .now() {
            self.deadline = nil
            handler.fail(.timeout)
            channel.close(promise: nil)
        } else {
            arm(at: deadline)
        }
    }

    /// Whether the channel is still up, as its handler saw it: asked twice per exchange (take
    /// and return), and `Channel.isActive` goes through NIO's lifecycle state with a retain.
    var isActive: Bool { !handler.wentInactive }

    /// The exchange in flight is over (answered, failed or timed out): no deadline runs.
    func settled() { deadline = nil }

    /// Sends the exchange's request; the handler tells the exchange once the whole response is
    /// in, or the exchange failed or timed out. Its timeout runs from `now` (read here if nil).
    func send(_ exchange: NodeConnections.Exchange, maxResponseBytes: Int, now: NIODeadline? = nil) {
        let channel = self.channel
        let deadline = (now ?? .now()) + exchange.timeout
        self.deadline = deadline
        if !timerArmed { arm(at: deadline) }
        handler.expect(exchange, maxResponseBytes: maxResponseBytes)
        // The node's prebuilt request line and headers, this request's own, then the body.
        let traceBytes = (exchange.request.traceparent?.utf8.count ?? 0) + (exchange.request.tracestate?.utf8.count ?? 0)
        let size = node.requestPrefix.readableBytes + 96 + exchange.request.requestID.utf8.count + traceBytes + exchange.request.body.readableBytes
        var bytes: ByteBuffer
        if var reused = scratch {
            scratch = nil
            reused.clear(minimumCapacity: size)
            bytes = reused
        } else {
            bytes = channel.allocator.buffer(capacity: size)
        }
        bytes.writeHead(reserving: size) { head in
            head.write(node.requestPrefix)
            head.header("Content-Length", decimal: exchange.request.body.readableBytes)
            head.header("X-Request-ID", string: exchange.request.requestID)
            if let traceparent = exchange.request.traceparent {
                head.header("traceparent", string: traceparent)
                if let tracestate = exchange.request.tracestate { head.header("tracestate", string: tracestate) }
            }
            head.write("\r\n")
            head.write(exchange.request.body)
        }
        if !handler.send(bytes) {
            // Closed under the pool (which hands out only connections it saw active): the
            // exchange fails on the next tick, not inside the pool's own call.
            let handler = self.handler
            channel.eventLoop.assumeIsolated().execute { handler.fail(.closed(beforeResponse: true)) }
        }
        scratch = bytes
    }
}

/// Reads one response at a time with Tollgate's own parser (`HTTP1ResponseParser`) and hands
/// it to the waiting exchange. A Content-Length body that arrives in one read is a slice of
/// that read, passed on to the client without a copy.
final class UpstreamResponseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum ExchangeError: Error {
        /// The connection closed before a full response: nothing (or not all) came back.
        case closed(beforeResponse: Bool)
        case timeout
        case tooLarge
        /// A compressed answer that inflates past the response limit (a zip bomb, or just too
        /// big), is corrupt, or is in a coding Tollgate did not ask for.
        case undecodable(UndecodableAnswer)
    }

    /// The node's name, written into each answer here: the answer is made once, in its final
    /// form, and moves to the client without being rebuilt on the way (`bench/retains`).
    private let node: String
    private var exchange: NodeConnections.Exchange?
    private var parser = HTTP1ResponseParser()
    private var pending: ByteBuffer?
    private var head: HTTP1ResponseHead?
    private var body: ByteBuffer?
    /// Told when the channel goes away, so the pool drops it from its idle list.
    var onInactive: (() -> Void)?
    /// Set when the channel went inactive (closed by either side).
    private(set) var wentInactive = false

    /// This handler's place in the pipeline, from `handlerAdded` to `handlerRemoved`: requests
    /// are written from here (`send`).
    private var context: ChannelHandlerContext?

    init(node: String) {
        self.node = node
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes a request from this handler's place, through whatever is before it (TLS) to the
    /// socket. `Channel.writeAndFlush` on the channel existential is NIO's generic entry point:
    /// unspecialized, it boxed the buffer into `NIOAny` by dynamic cast (a copy, a retain and a
    /// runtime type check per request) and started at the pipeline's tail.
    /// False when the handler is out of the pipeline already (the channel closed).
    func send(_ bytes: ByteBuffer) -> Bool {
        guard let context else { return false }
        context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
        return true
    }

    func expect(_ exchange: NodeConnections.Exchange, maxResponseBytes: Int) {
        precondition(self.exchange == nil, "one request at a time per upstream connection")
        self.exchange = exchange
        parser.limits.maxBodyBytes = maxResponseBytes
        head = nil
        body = nil
    }

    func fail(_ error: ExchangeError) {
        guard let exchange else { return }
        self.exchange = nil
        exchange.ended(.failure(error), keepAlive: false)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var earlier = pending {
            pending = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        do {
            while let event = try parser.next(&buffer) { handle(event, context: context) }
        } catch {
            // Garbage or framing the parser refuses: the connection cannot be trusted again.
            fail(error == .bodyTooLarge ? .tooLarge : .closed(beforeResponse: head == nil))
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 { pending = buffer }
    }

    private func handle(_ event: HTTP1ResponseParser.Event, context: ChannelHandlerContext) {
        switch event {
        case .head(let responseHead):
            head = responseHead
        case .body(var chunk):
            if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let exchange, let head else { return }
            self.exchange = nil
            self.head = nil
            let status = HTTPResponseStatus(statusCode: head.status)
            let received = body.take() ?? context.channel.allocator.buffer(capacity: 0)
            guard head.contentCoding != .identity else {
                return exchange.ended(.success(UpstreamResponse(status: status, body: received, node: node, attempts: 1, upstreamNanos: 0)),
                    keepAlive: head.keepAlive)
            }
            let inflated: ByteBuffer
            do {
                inflated = try Inflater.inflate(received, coding: head.contentCoding, limit: parser.limits.maxBodyBytes,
                    allocator: context.channel.allocator)
            } catch {
                let reason: UndecodableAnswer = head.contentCoding == .unsupported ? .unsupportedCoding : error == .tooLarge ? .tooLarge : .corrupt
                exchange.ended(.failure(.undecodable(reason)), keepAlive: false)
                context.close(promise: nil)
                return
            }
            exchange.ended(.success(UpstreamResponse(status: status, body: inflated, node: node, attempts: 1, upstreamNanos: 0,
                gzipped: head.contentCoding == .gzip ? received : nil)), keepAlive: head.keepAlive)
        }
    }

    /// Not passed on: no handler after this one wants it, and passing it walks to the
    /// pipeline's tail and back, once per answer. The next read is asked for from here, so
    /// NIO's `autoRead` finds it pending and does not send its own from the pipeline's tail
    /// (`bench/retains`).
    func channelReadComplete(context: ChannelHandlerContext) {
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        wentInactive = true
        // A response framed by the connection's close ends here.
        if let event = try? parser.finish() { handle(event, context: context) }
        fail(.closed(beforeResponse: head == nil))
        let inactive = onInactive
        onInactive = nil
        inactive?()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.closed(beforeResponse: head == nil))
        context.close(promise: nil)
    }
}
