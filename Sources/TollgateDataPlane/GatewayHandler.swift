import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// One client connection: collects each request, runs the pipeline, writes the reply, records it.
///
/// Pipelined requests are queued here and served one at a time, so replies leave in order.
/// (NIO's `HTTPServerPipelineHandler` would do the same, but it pauses socket reads while a
/// response is pending: two `epoll_ctl` calls per request, measured in `bench/`.) Past
/// `maxQueued` waiting requests the handler stops reading until the queue drains.
final class GatewayHandler: ChannelDuplexHandler {
    typealias OutboundIn = Never
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private let gateway: Gateway
    private var loop: LoopState?
    private var client: IPAddress?
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var bodyBytes = 0
    private var overflow = false
    private var inFlight = false
    /// A request read in full, waiting to be served.
    private struct Received {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var bytes: Int
        var overflow: Bool
    }

    /// Complete requests that arrived while another was in flight.
    private var queued: CircularBuffer<Received> = []
    /// Whether the request being served overflowed the body cap (its connection then closes).
    private var servingOverflow = false
    private var readPaused = false
    private var readPending = false
    /// Shutdown asked this connection to close once idle.
    private var quiescing = false
    static let maxQueued = 16

    init(gateway: Gateway) {
        self.gateway = gateway
    }

    func handlerAdded(context: ChannelHandlerContext) {
        loop = gateway.loops[context.eventLoop]
        if let address = context.channel.remoteAddress?.ipAddress { client = IPAddress(address) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = nil
            bodyBytes = 0
            overflow = false
        case .body(var chunk):
            guard !overflow else { return }
            bodyBytes += chunk.readableBytes
            if bodyBytes > gateway.settings.maxBodyBytes {
                overflow = true
                body = nil
            } else if body == nil {
                body = chunk
            } else {
                body!.writeBuffer(&chunk)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let received = Received(head: head, body: body, bytes: bodyBytes, overflow: overflow)
            body = nil
            if inFlight {
                queued.append(received)
                if queued.count >= Self.maxQueued { readPaused = true }
                return
            }
            serve(received, context: context)
        }
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
        servingOverflow = received.overflow
        let head = received.head
        guard let loop else {
            context.close(promise: nil)
            return
        }
        let startedAt = gateway.clock()
        let requestID: String
        if let inbound = head.headers.first(name: "X-Request-ID"), RequestIDGenerator.isAcceptable(inbound) {
            requestID = inbound
        } else {
            requestID = loop.requestIDs.next()
        }
        let request = GatewayRequest(
            head: head, body: received.body ?? context.channel.allocator.buffer(capacity: 0), requestID: requestID,
            client: clientAddress(head.headers), startedAt: startedAt)
        let bytesIn = received.bytes
        // The pipeline answers on this loop, so the context may be used when it does.
        let pipeline = RequestPipeline(gateway: gateway, loop: loop, allocator: context.channel.allocator) { [self] outcome in
            self.write(outcome, request: request, bytesIn: bytesIn, context: context)
        }
        if received.overflow {
            pipeline.fail(.payloadTooLarge, .init(code: -32600, message: "body exceeds the server's \(gateway.settings.maxBodyBytes) bytes"), RequestFacts())
        } else {
            pipeline.handle(request)
        }
    }

    private func write(_ outcome: GatewayOutcome, request: GatewayRequest, bytesIn: Int, context: ChannelHandlerContext) {
        inFlight = false
        var reply = outcome.reply
        let facts = outcome.facts
        let keepAlive = request.head.isKeepAlive && !servingOverflow && !(quiescing && queued.isEmpty)
        let bytesOut = reply.body.readableBytes
        let sendBody = request.head.method != .HEAD && bytesOut > 0
        // Small bodies travel in the head's buffer: one iovec, one write.
        let inline = sendBody && bytesOut <= 2048
        var head = context.channel.allocator.buffer(capacity: 320 + (inline ? bytesOut : 0))
        ResponseHead.start(reply.status, version: request.head.version, into: &head)
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
        } else if request.head.version.minor == 0 {
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
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(head)).whenComplete { _ in channel.close(promise: nil) }
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
    private func clientAddress(_ headers: HTTPHeaders) -> IPAddress? {
        let trusted = gateway.settings.trustedProxies
        guard let peer = client, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return client }
        let hops = headers[canonicalForm: "X-Forwarded-For"].reversed()
        for hop in hops {
            guard let address = IPAddress(hop.trimmingSpaces) else { return nil }
            if !trusted.contains(where: { $0.contains(address) }) { return address }
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
