import Logging
import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC

/// One client connection: frames requests with Tollgate's own HTTP/1.1 parser, runs the
/// pipeline, writes the reply, records it.
///
/// Pipelined requests are queued here and served one at a time, so replies leave in order.
/// (NIO's `HTTPServerPipelineHandler` would do the same, but it pauses socket reads while a
/// response is pending: two `epoll_ctl` calls per request, measured in `bench/`.) Past
/// `maxQueued` waiting requests the handler stops reading until the queue drains. A framing
/// error is answered in its turn and closes the connection; nothing after it is parsed.
final class GatewayHandler: ChannelDuplexHandler {
    typealias OutboundIn = Never
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let gateway: Gateway
    private var loop: LoopState?
    private var client: IPAddress?
    private var parser: HTTP1RequestParser
    /// Bytes read but not parsed yet: part of a head (or of a chunk-size line).
    private var pending: ByteBuffer?
    private var head: HTTP1RequestHead?
    private var body: ByteBuffer?
    private var bodyBytes = 0
    /// Framing failed or a body was too large: the rest of the input is discarded.
    private var stopped = false
    /// The deadline for a head that arrives in pieces (slow clients).
    private var headTimer: Scheduled<Void>?
    private var inFlight = false
    /// A request read in full (or refused by the parser), waiting to be served.
    private struct Received {
        /// nil when the parser refused the bytes before a head was complete.
        var head: HTTP1RequestHead?
        var body: ByteBuffer?
        var bytes: Int
        /// Why the parser refused this request (its connection then closes).
        var refusal: HTTP1ParseError?
    }

    /// Complete requests that arrived while another was in flight.
    private var queued: CircularBuffer<Received> = []
    /// Whether the request being served was refused by the parser (its connection then closes).
    private var servingRefusal = false
    private var readPaused = false
    private var readPending = false
    /// Shutdown asked this connection to close once idle.
    private var quiescing = false
    static let maxQueued = 16
    /// After a refused upload's 413 the rest of it is read and dropped for a while, so that the
    /// client sees the answer rather than a reset (a close with unread input sends RST): until
    /// it pauses for `Linger.quiet`, or at most `Linger.limit`, or `Linger.maxBytes`.
    private var linger: Linger?

    struct Linger {
        static let quiet = TimeAmount.seconds(1)
        static let limit = TimeAmount.seconds(10)
        static let maxBytes = 64 << 20
        let started: NIODeadline
        var lastRead: NIODeadline
        var discarded = 0

        mutating func discard(_ bytes: Int) {
            discarded += bytes
            lastRead = .now()
        }

        func isOver(at now: NIODeadline) -> Bool {
            now - lastRead >= Self.quiet || now - started >= Self.limit || discarded >= Self.maxBytes
        }
    }

    init(gateway: Gateway) {
        self.gateway = gateway
        let settings = gateway.settings
        parser = HTTP1RequestParser(limits: HTTP1Limits(
            maxHeaderBytes: settings.maxHeaderBytes, maxHeaders: settings.maxHeaders, maxBodyBytes: settings.maxBodyBytes))
    }

    func handlerAdded(context: ChannelHandlerContext) {
        loop = gateway.loops[context.eventLoop]
        if let address = context.channel.remoteAddress?.ipAddress { client = IPAddress(address) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !stopped else {
            // Input after a refusal is dropped; while lingering it is counted.
            if var linger { linger.discard(unwrapInboundIn(data).readableBytes); self.linger = linger }
            return
        }
        var buffer = unwrapInboundIn(data)
        if var earlier = pending {
            pending = nil
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        parse(&buffer, context: context)
        if !stopped, buffer.readableBytes > 0 { pending = buffer }
        // A head still incomplete after this read: it must complete within the header timeout.
        if !stopped, head == nil, pending != nil, headTimer == nil {
            headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: gateway.settings.headerTimeout) { [weak self] in
                self?.headTimedOut(context: context)
            }
        }
    }

    private func parse(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        do {
            while let event = try parser.next(&buffer) {
                switch event {
                case .head(let requestHead):
                    headTimer?.cancel()
                    headTimer = nil
                    head = requestHead
                    body = nil
                    bodyBytes = 0
                    if requestHead.expectsContinue, !inFlight, queued.isEmpty, (requestHead.contentLength ?? 1) > 0,
                        (requestHead.contentLength ?? 0) <= gateway.settings.maxBodyBytes
                    {
                        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
                    }
                case .body(var chunk):
                    bodyBytes += chunk.readableBytes
                    if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
                case .end:
                    guard let requestHead = head else { continue }
                    head = nil
                    let received = Received(head: requestHead, body: body, bytes: bodyBytes)
                    body = nil
                    enqueue(received, context: context)
                }
            }
        } catch {
            stopped = true
            pending = nil
            headTimer?.cancel()
            headTimer = nil
            let received = Received(head: head, body: nil, bytes: bodyBytes, refusal: error)
            head = nil
            body = nil
            enqueue(received, context: context)
        }
    }

    private func enqueue(_ received: Received, context: ChannelHandlerContext) {
        guard inFlight else { return serve(received, context: context) }
        queued.append(received)
        if queued.count >= Self.maxQueued { readPaused = true }
    }

    /// A head that took longer than the header timeout: 408, and the connection closes.
    private func headTimedOut(context: ChannelHandlerContext) {
        headTimer = nil
        guard head == nil, !stopped else { return }
        stopped = true
        pending = nil
        enqueue(Received(head: nil, body: nil, bytes: 0, refusal: nil), context: context)
    }

    /// Holds back socket reads while too many pipelined requests wait.
    func read(context: ChannelHandlerContext) {
        if readPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Serves the next queued request, if any, once a reply is out.
    private func next(context: ChannelHandlerContext) {
        guard let request = queued.popFirst() else {
            if quiescing { context.close(promise: nil) }
            return
        }
        if readPaused, queued.count < Self.maxQueued / 2 {
            readPaused = false
            if readPending {
                readPending = false
                context.read()
            }
        }
        serve(request, context: context)
    }

    private func serve(_ received: Received, context: ChannelHandlerContext) {
        inFlight = true
        servingRefusal = received.refusal != nil || received.head == nil
        guard let loop else {
            context.close(promise: nil)
            return
        }
        guard let head = received.head else { return refuseUnframed(received.refusal, loop: loop, context: context) }
        let startedAt = gateway.clock()
        let requestID: String
        if let inbound = head.string(head.requestID), RequestIDGenerator.isAcceptable(inbound) {
            requestID = inbound
        } else {
            requestID = loop.requestIDs.next()
        }
        let request = GatewayRequest(
            head: head, body: received.body ?? context.channel.allocator.buffer(capacity: 0), requestID: requestID,
            client: clientAddress(head), startedAt: startedAt)
        let bytesIn = received.bytes
        // The pipeline answers on this loop, so the context may be used when it does.
        let pipeline = RequestPipeline(gateway: gateway, loop: loop, allocator: context.channel.allocator) { [self] outcome in
            self.write(outcome, request: request, bytesIn: bytesIn, context: context)
        }
        if let refusal = received.refusal {
            let message = refusal == .bodyTooLarge ? "body exceeds the server's \(gateway.settings.maxBodyBytes) bytes" : refusal.message
            pipeline.fail(HTTPResponseStatus(statusCode: refusal.status), .init(code: RPCError.invalidRequest, message: message), RequestFacts())
        } else {
            pipeline.handle(request)
        }
    }

    /// Bytes that never became a request head (malformed, too large, or too slow): a JSON-RPC
    /// error with a fresh request ID, one log line, and the connection closes.
    private func refuseUnframed(_ refusal: HTTP1ParseError?, loop: LoopState, context: ChannelHandlerContext) {
        inFlight = false
        let requestID = loop.requestIDs.next()
        let status = refusal.map { HTTPResponseStatus(statusCode: $0.status) } ?? .requestTimeout
        let message = refusal?.message ?? "request head not received within \(gateway.settings.headerTimeout.nanoseconds / 1_000_000) ms"
        let body = RPCErrorWriter.body(RPCError(code: RPCError.invalidRequest, message: message), id: nil, in: nil)
        var buffer = context.channel.allocator.buffer(capacity: 200 + body.count)
        ResponseHead.start(status, version: .http1_1, into: &buffer)
        ResponseHead.header("Content-Type", "application/json", into: &buffer)
        ResponseHead.header("Content-Length", decimal: body.count, into: &buffer)
        ResponseHead.header("X-Request-ID", requestID, into: &buffer)
        ResponseHead.header("Connection", "close", into: &buffer)
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(body)
        queued.removeAll()
        // A refused head may still be arriving (a 200 KB header): linger so the client reads the answer.
        closeAfter(context.writeAndFlush(wrapOutboundOut(buffer)), linger: refusal != nil, context: context)
        gateway.logger.info("request refused", metadata: [
            "request_id": "\(requestID)", "status": "\(status.code)", "reason": "\(message)", "network": "-", "key": "-",
        ])
    }

    /// Closes once `written` completes. With `linger`, input is first read and dropped for a
    /// moment: a client still uploading a refused body then reads the answer instead of a
    /// connection reset.
    private func closeAfter(_ written: EventLoopFuture<Void>, linger lingering: Bool, context: ChannelHandlerContext) {
        let channel = context.channel
        guard lingering else {
            written.whenComplete { _ in channel.close(promise: nil) }
            return
        }
        let now = NIODeadline.now()
        linger = Linger(started: now, lastRead: now)
        // No half-close: many clients abort their upload on the FIN and never read the answer.
        // The answer says `Connection: close`; the client closes, goes quiet, or is cut off.
        written.assumeIsolated().whenComplete { _ in self.checkLinger(channel: channel) }
    }

    private func checkLinger(channel: any Channel) {
        guard channel.isActive, let linger else { return }
        if linger.isOver(at: .now()) {
            channel.close(promise: nil)
        } else {
            channel.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(250)) { self.checkLinger(channel: channel) }
        }
    }

    private func write(_ outcome: GatewayOutcome, request: GatewayRequest, bytesIn: Int, context: ChannelHandlerContext) {
        inFlight = false
        var reply = outcome.reply
        let facts = outcome.facts
        let keepAlive = request.head.keepAlive && !servingRefusal && !(quiescing && queued.isEmpty)
        let bytesOut = reply.body.readableBytes
        let sendBody = request.head.method != .head && bytesOut > 0
        let version = HTTPVersion(major: 1, minor: request.head.minorVersion == 0 ? 0 : 1)
        // Small bodies travel in the head's buffer: one iovec, one write.
        let inline = sendBody && bytesOut <= 2048
        var head = context.channel.allocator.buffer(capacity: 320 + (inline ? bytesOut : 0))
        ResponseHead.start(reply.status, version: version, into: &head)
        ResponseHead.header("Content-Type", "application/json", into: &head)
        ResponseHead.header("Content-Length", decimal: bytesOut, into: &head)
        ResponseHead.header("X-Request-ID", request.requestID, into: &head)
        if let limits = facts.rateLimit {
            ResponseHead.header("RateLimit-Limit", decimal: limits.limit, into: &head)
            ResponseHead.header("RateLimit-Remaining", decimal: limits.remaining, into: &head)
            ResponseHead.header("RateLimit-Reset", decimal: limits.reset, into: &head)
        }
        if !reply.headers.isEmpty { ResponseHead.headers(reply.headers, into: &head) }
        if let origin = facts.corsOrigin {
            ResponseHead.header("Access-Control-Allow-Origin", origin, into: &head)
            ResponseHead.header("Vary", "Origin", into: &head)
            ResponseHead.header("Access-Control-Expose-Headers", "X-Request-ID, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After", into: &head)
        }
        if !keepAlive {
            ResponseHead.header("Connection", "close", into: &head)
        } else if version.minor == 0 {
            ResponseHead.header("Connection", "keep-alive", into: &head)
        }
        head.writeStaticString("\r\n")
        if inline {
            head.writeBuffer(&reply.body)
        } else if sendBody {
            context.write(wrapOutboundOut(head), promise: nil)
            head = reply.body
        }
        reply.body = ByteBuffer()
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(head), promise: nil)
        } else {
            closeAfter(context.writeAndFlush(wrapOutboundOut(head)), linger: servingRefusal && stopped, context: context)
        }
        record(reply, facts: facts, request: request, bytesIn: bytesIn, bytesOut: bytesOut)
        if keepAlive { next(context: context) } else { queued.removeAll() }
    }

    /// Metrics, telemetry and (for refusals and failures) one log line, after the reply is out.
    private func record(_ reply: GatewayReply, facts: RequestFacts, request: GatewayRequest, bytesIn: Int, bytesOut: Int) {
        guard let loop else { return }
        let total = gateway.clock() - request.startedAt
        let status = Int(reply.status.code)
        if facts.network != "-" {
            gateway.metrics.request(&loop.metricHandles, network: facts.network, method: facts.method, status: status,
                plan: facts.plan, totalNanos: total, overheadNanos: total - facts.upstreamNanos)
            if facts.attempts > 0 { gateway.metrics.cache(&loop.metricHandles, network: facts.network, result: "bypass") }
            facts.trace?.finish(method: facts.method, status: status, keyPrefix: facts.keyPrefix, computeUnits: facts.computeUnits,
                rpcErrorCode: reply.rpcErrorCode)
            if gateway.telemetryEnabled {
                loop.record(RequestRecord(
                    timestampMillis: WallClock.nowMillis(), requestID: request.requestID, keyID: facts.keyID, keyPrefix: facts.keyPrefix,
                    network: facts.network, method: facts.method, batchSize: facts.batchSize, computeUnits: facts.computeUnits,
                    httpStatus: status, rpcErrorCode: reply.rpcErrorCode, upstream: facts.upstream, attempts: facts.attempts,
                    latencyMicros: total / 1000, upstreamLatencyMicros: facts.upstreamNanos / 1000, bytesIn: bytesIn, bytesOut: bytesOut,
                    clientIP: request.client), to: gateway.telemetry)
            }
        }
        if let refusal = reply.refusal, status != 429 {
            let level: Logger.Level = status >= 500 ? .warning : .info
            gateway.logger.log(level: level, "request refused", metadata: [
                "request_id": "\(request.requestID)", "status": "\(status)", "reason": "\(refusal)",
                "network": "\(facts.network)", "key": "\(facts.keyPrefix ?? "-")",
            ])
        }
    }

    /// The client's address: the peer, or the last untrusted `X-Forwarded-For` hop when the peer
    /// is a trusted proxy.
    private func clientAddress(_ head: HTTP1RequestHead) -> IPAddress? {
        let trusted = gateway.settings.trustedProxies
        guard let peer = client, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return client }
        for field in head.forwardedFor.reversed() {
            for hop in head.string(field).split(separator: ",").reversed() {
                guard let address = IPAddress(hop.trimmingSpaces) else { return nil }
                if !trusted.contains(where: { $0.contains(address) }) { return address }
            }
        }
        return peer
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is IdleStateHandler.IdleStateEvent where !inFlight && head == nil:
            context.close(promise: nil)
        case is ChannelShouldQuiesceEvent:
            // Shutdown: finish what was asked, then close; an idle connection closes now.
            quiescing = true
            if !inFlight && head == nil && queued.isEmpty { context.close(promise: nil) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
