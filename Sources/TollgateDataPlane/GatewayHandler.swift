import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC
import TollgateUpstream

/// One client connection: frames requests with Tollgate's own HTTP/1.1 parser, runs each
/// through the `RequestPipeline`, writes the reply, records it.
///
/// What happens next on the connection (serve now or queue a pipelined request, pause reads,
/// keep alive or close, quiesce) is decided by its `ConnectionStateMachine`; this handler holds
/// the queued requests and performs the decisions. (NIO's `HTTPServerPipelineHandler` would
/// keep replies in order too, but it pauses socket reads while a response is pending: two
/// `epoll_ctl` calls per request, measured in `bench/`.) A framing error is answered in its
/// turn and closes the connection; nothing after it is parsed.
///
/// The handler is also the request's responder and, while a node works, the pool's: one
/// request is in flight per connection, so its state lives here and nothing is allocated to
/// call back.
final class GatewayHandler: ChannelInboundHandler, RemovableChannelHandler, RequestResponder, UpstreamResponder {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let gateway: Gateway
    private var loop: LoopState?
    private var context: ChannelHandlerContext?
    /// The channel's allocator, read once: `Channel.allocator` goes through NIO's channel
    /// state each time (several times per request, measured in `perf`).
    private var allocator = ByteBufferAllocator()
    private var client: IPAddress?
    private var parser: HTTP1RequestParser
    private var state = ConnectionStateMachine(maxQueued: GatewayHandler.maxQueued)
    /// Bytes read but not parsed yet: part of a head (or of a chunk-size line).
    private var pending: ByteBuffer?
    /// The body read so far of the request whose head the parser holds (`parser.head`).
    private var body: ByteBuffer?
    private var bodyBytes = 0
    /// The deadline for a head that arrives in pieces (slow clients).
    private var headTimer: Scheduled<Void>?
    /// The idle timeout, kept here rather than by NIO's `IdleStateHandler` (one handler less on
    /// every read, write and flush, and no clock read per read): a timer every half timeout
    /// closes a connection that read nothing since the check before and has nothing in flight,
    /// so an idle connection goes between one and one and a half timeouts after its last bytes
    /// read or its last reply written (a slow reply does not eat into the client's idle time).
    private var idleTimer: Scheduled<Void>?
    private var activeSinceIdleCheck = false
    /// Set once the channel is gone: no timer is armed again (they hold the handler strongly).
    private var removed = false
    private var quietChecks = 0
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
    /// The request being served: what the reply and the record need.
    private var serving: (request: GatewayRequest, bytesIn: Int, refused: Bool)?
    /// The request last answered, kept to be reused for the next (see `serve`).
    private var spare: GatewayRequest?
    /// A forwarded request waiting on the pool.
    private var forwarding: Forwarding?
    /// Set while the pool's answer is made into the reply, in place in `forwarding`: a queued
    /// request waits until it is done rather than starting inside it (see `upstreamAnswered`).
    private var answering = false
    /// A queued request became due while `answering`.
    private var serveNextAfterAnswer = false
    /// The key connection slot this connection holds (`Plan.maxConnections`), given back when it closes.
    private var slot: KeyConnectionCount?
    /// Set when a request was refused a slot: its reply closes the connection.
    private var closeAfterReply = false
    /// A WebSocket hand-over is being decided: later bytes are frames, kept in `pending` unparsed.
    private var upgrading = false
    /// Whether `autoRead` is off (`setAutoRead`): `channelReadComplete` then asks for no read.
    private var readsHeld = false
    /// The last reply head's buffer, written into again (see `UpstreamConnection.scratch`).
    private var scratch: ByteBuffer?
    static let maxQueued = 16
    /// The largest read buffer a parked request (`spare`) may keep alive on an idle connection.
    static let spareBufferLimit = 8192
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
        self.context = context
        allocator = context.channel.allocator
        scheduleIdleCheck(context.eventLoop)
        loop = gateway.loops[context.eventLoop]
        if let address = context.channel.remoteAddress?.ipAddress { client = IPAddress(address) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
        slot?.release()
        slot = nil
        idleTimer?.cancel()
        idleTimer = nil
        headTimer?.cancel()
        headTimer = nil
    }

    private func scheduleIdleCheck(_ eventLoop: any EventLoop) {
        let half = TimeAmount.nanoseconds(max(1_000_000, gateway.settings.idleTimeout.nanoseconds / 2))
        // Strong captures in both timers: `handlerRemoved` cancels them. A `weak` one would give
        // the handler a side table, and every retain of it (several per request) the slow path.
        idleTimer = eventLoop.assumeIsolated().scheduleTask(in: half) { self.idleCheck() }
    }

    private func idleCheck() {
        guard let context, !removed else { return }
        if activeSinceIdleCheck || !state.idleTimeout() || parser.hasHead {
            // Read or answered since the last check, or busy: a fresh period starts.
            activeSinceIdleCheck = false
            quietChecks = 0
        } else {
            quietChecks += 1
            // Two quiet half-periods in a row: at least one whole timeout without a byte.
            if quietChecks >= 2 {
                context.close(promise: nil)
                return
            }
        }
        scheduleIdleCheck(context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        activeSinceIdleCheck = true
        guard !state.stopped else {
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
        if !upgrading { parse(&buffer, context: context) }
        if !state.stopped, buffer.readableBytes > 0 { pending = buffer }
        // A head still incomplete after this read: it must complete within the header timeout.
        if !state.stopped, !upgrading, !parser.hasHead, pending != nil, headTimer == nil {
            state.headStarted()
            headTimer = context.eventLoop.assumeIsolated().scheduleTask(in: gateway.settings.headerTimeout) { self.headTimedOut() }
        }
    }

    /// Passed on only once the connection is handed to a WebSocket session, whose handlers
    /// come after this one. Before that no handler follows, and passing it walked to the
    /// pipeline's tail and back for nothing, once per request. The next read is asked for from
    /// here unless reads are held back: NIO's `autoRead` then finds it pending and does not
    /// send its own from the pipeline's tail (`bench/retains`).
    func channelReadComplete(context: ChannelHandlerContext) {
        if upgrading {
            context.fireChannelReadComplete()
        } else if !readsHeld {
            context.read()
        }
    }

    private func parse(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        do {
            // Steps, not events: the head stays in the parser until the request is complete,
            // then moves once into the request (`HTTP1RequestParser.Step`).
            while let step = try parser.step(&buffer) {
                switch step {
                case .head:
                    headTimer?.cancel()
                    headTimer = nil
                    body = nil
                    bodyBytes = 0
                    if parser.head?.expectsContinue == true, state.mayContinue, (parser.head?.contentLength ?? 1) > 0,
                        (parser.head?.contentLength ?? 0) <= gateway.settings.maxBodyBytes
                    {
                        context.writeAndFlush(wrapOutboundOut(allocator.buffer(staticString: "HTTP/1.1 100 Continue\r\n\r\n")), promise: nil)
                    }
                case .body(var chunk):
                    bodyBytes += chunk.readableBytes
                    if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
                case .end:
                    guard let requestHead = parser.takeHead() else { continue }
                    let upgrade = WebSocketUpgrade.isRequested(requestHead)
                    accept(head: consume requestHead, body: body.take(), bytes: bodyBytes)
                    if upgrade {
                        // What follows is not HTTP any more, whichever way the hand-over goes.
                        upgrading = true
                        return
                    }
                }
            }
        } catch {
            pending = nil
            headTimer?.cancel()
            headTimer = nil
            body = nil
            acceptRefused(head: parser.takeHead(), bytes: bodyBytes, refusal: error)
        }
    }

    /// A request read in full: served now, or queued behind the one in flight. In parts rather
    /// than as a `Received`: served at once (nearly always), the head goes straight on into the
    /// request, not through a value built to hold it, and not as an optional: each wrapping and
    /// unwrapping of the 176-byte head was a `memcpy` (`bench/copies`).
    private func accept(head: consuming HTTP1RequestHead, body: consuming ByteBuffer?, bytes: Int) {
        switch state.requestReceived(refused: false) {
        case .serve: serve(head: head, body: body, bytes: bytes, refusal: nil)
        case .queue: queued.append(Received(head: head, body: body, bytes: bytes, refusal: nil))
        case .queueAndPauseReads:
            queued.append(Received(head: head, body: body, bytes: bytes, refusal: nil))
            setAutoRead(false)
        }
    }

    /// Bytes the parser refused (with the head, when it was complete), or a head that never
    /// came: answered in turn, and the connection closes.
    private func acceptRefused(head: consuming HTTP1RequestHead?, bytes: Int, refusal: HTTP1ParseError?) {
        let received = Received(head: head, body: nil, bytes: bytes, refusal: refusal)
        switch state.requestReceived(refused: true) {
        case .serve: serve(received)
        case .queue: queued.append(received)
        case .queueAndPauseReads:
            queued.append(received)
            setAutoRead(false)
        }
    }

    /// A head that took longer than the header timeout: 408, and the connection closes.
    private func headTimedOut() {
        headTimer = nil
        guard !parser.hasHead, state.headTimedOut() else { return }
        pending = nil
        acceptRefused(head: nil, bytes: 0, refusal: nil)
    }

    /// Holds back socket reads while too many pipelined requests wait, through the channel's
    /// `autoRead` rather than by intercepting `read`: an outbound `read` then passes no handler
    /// of ours on each of the connection's reads (measured in `bench/profile`).
    private func setAutoRead(_ on: Bool) {
        readsHeld = !on
        _ = try? context?.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: on)
    }

    private func serve(_ received: consuming Received) {
        guard let head = received.head.take() else {
            guard let loop, let context else { return }
            return refuseUnframed(received.refusal, loop: loop, context: context)
        }
        serve(head: head, body: received.body.take(), bytes: received.bytes, refusal: received.refusal)
    }

    private func serve(head: consuming HTTP1RequestHead, body: consuming ByteBuffer?, bytes: Int, refusal: HTTP1ParseError?) {
        guard let loop, let context else { return }
        let upgrade = WebSocketUpgrade.isRequested(head)
        // The last request's object, when its reply is out and nothing kept it (a trace, a
        // single-flight waiter): keep-alive traffic then allocates no request object.
        var spare = self.spare.take()
        let reusable = spare != nil && isKnownUniquelyReferenced(&spare!)
        let request = Intake.request(
            head: consume head, body: body.take() ?? allocator.buffer(capacity: 0), peer: client,
            trustedProxies: gateway.settings.trustedProxies, loop: loop, startedAt: gateway.clock(), reusing: reusable ? spare : nil)
        spare = nil
        if upgrade {
            request.webSocket = .upgrade
            // A refused hand-over closes the connection: the client's next bytes would be frames.
            closeAfterReply = true
        }
        serving = (request, bytes, refusal != nil)
        let pipeline = self.pipeline(loop: loop, context: context)
        if let refusal {
            let message = refusal == .bodyTooLarge ? "body exceeds the server's \(gateway.settings.maxBodyBytes) bytes" : refusal.message
            pipeline.refuse(Refusal(HTTPResponseStatus(statusCode: refusal.status), RPCError.invalidRequest, message), RequestFacts())
        } else {
            pipeline.handle(request)
        }
    }

    private func pipeline(loop: LoopState, context: ChannelHandlerContext) -> RequestPipeline {
        RequestPipeline(gateway: gateway, loop: loop, allocator: allocator, connection: self)
    }

    func awaitUpstream(_ forwarding: consuming Forwarding) -> any UpstreamResponder {
        self.forwarding = consume forwarding
        return self
    }

    /// Made where it is kept (`Optional.set`): handed in made, the 504-byte `Forwarding` was
    /// copied three times on its way into `forwarding` (`bench/copies`), and once here.
    func awaitUpstream(
        _ plan: borrowing BatchPlan, request: GatewayRequest, facts: inout RequestFacts, pool: any UpstreamPool
    ) -> any UpstreamResponder {
        forwarding.set { Forwarding(plan, request: request, facts: facts.take(), pool: pool) }
        return self
    }

    func holdSlot(of connections: KeyConnectionCount, max: Int) -> Bool {
        if slot === connections { return true }
        guard connections.tryAcquire(max: max) else {
            closeAfterReply = true
            return false
        }
        // Another key on the same connection: it now counts against this one only.
        slot?.release()
        slot = connections
        return true
    }

    /// The key and plan allow the hand-over: 101, then this handler gives the channel to NIO's
    /// WebSocket frame codec and a `WebSocketSession`, with the key's slots and any bytes that
    /// came after the head. With a fleet-wide count (Redis), the slot is taken there too before
    /// the 101: the one wait on this path, once per socket; bytes that arrive meanwhile wait in
    /// `pending`. A count that cannot be reached leaves this replica's own count in charge.
    func acceptWebSocket(_ key: KeyContext, request: GatewayRequest, facts: RequestFacts, pipeline: RequestPipeline) {
        guard let context, let loop, serving != nil else { return }
        var webSocketSlot: KeyConnectionCount?
        if let max = key.plan.maxWebSocketConnections {
            guard key.webSockets.tryAcquire(max: max) else {
                return pipeline.refuse(Self.tooManyWebSockets(max), facts, context: key)
            }
            webSocketSlot = key.webSockets
            if let counter = gateway.webSocketCounter {
                let keyID = key.record.id
                let answer = context.eventLoop.makeFutureWithTask { try await counter.acquire(keyID: keyID, max: max) }
                answer.assumeIsolated().whenComplete { result in
                    guard self.context != nil, self.serving != nil else {
                        // The client left while the count was asked.
                        webSocketSlot?.release()
                        if case .success(true) = result { Task { await counter.release(keyID: keyID) } }
                        return
                    }
                    switch result {
                    case .success(true):
                        self.handOver(key, request: request, facts: facts, webSocketSlot: webSocketSlot, sharedSlot: (counter, keyID), loop: loop)
                    case .success(false):
                        webSocketSlot?.release()
                        pipeline.refuse(Self.tooManyWebSockets(max, fleet: true), facts, context: key)
                    case .failure(let error):
                        self.gateway.logger.warning("websocket count across replicas unavailable; this replica's count applies", metadata: [
                            "request_id": "\(request.requestID)", "error": "\(error)",
                        ])
                        self.handOver(key, request: request, facts: facts, webSocketSlot: webSocketSlot, sharedSlot: nil, loop: loop)
                    }
                }
                return
            }
        }
        handOver(key, request: request, facts: facts, webSocketSlot: webSocketSlot, sharedSlot: nil, loop: loop)
    }

    static func tooManyWebSockets(_ max: Int, fleet: Bool = false) -> Refusal {
        var refusal = Refusal(.tooManyRequests, RPCError.limitExceeded,
            "this key already has \(max) open WebSockets\(fleet ? " across the fleet" : ""), the plan's maximum; share one for many subscriptions")
        refusal.retryAfter = 5
        return refusal
    }

    private func handOver(
        _ key: KeyContext, request: GatewayRequest, facts: RequestFacts, webSocketSlot: KeyConnectionCount?,
        sharedSlot: (counter: any SharedConnectionCounter, keyID: Int64)?, loop: LoopState
    ) {
        guard let context else { return }
        serving = nil
        let opened = WebSocketSession.Opened(
            head: request.head, client: request.client, network: facts.network, keyPrefix: facts.keyPrefix ?? "-",
            requestID: request.requestID, connectionSlot: slot.take(), webSocketSlot: webSocketSlot, sharedSlot: sharedSlot)
        context.writeAndFlush(wrapOutboundOut(WebSocketUpgrade.accept(request.head, requestID: request.requestID, allocator: allocator)),
            promise: nil)
        let session = WebSocketSession(gateway: gateway, loop: loop, opened: opened)
        do {
            let sync = context.pipeline.syncOperations
            // Each goes in right after this handler, so in reverse: encoder, decoder, error handler, session.
            let decoder = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: gateway.settings.maxBodyBytes))
            try sync.addHandler(session, position: .after(self))
            try sync.addHandler(WebSocketProtocolErrorHandler(), position: .after(self))
            try sync.addHandler(decoder, position: .after(self))
            try sync.addHandler(WebSocketFrameEncoder(), position: .after(self))
            if let early = pending.take(), early.readableBytes > 0 { context.fireChannelRead(NIOAny(early)) }
            sync.removeHandler(context: context, promise: nil)
            context.read()
        } catch {
            context.close(promise: nil)
        }
        gateway.logger.info("websocket opened", metadata: [
            "request_id": "\(request.requestID)", "network": "\(facts.network)", "key": "\(facts.keyPrefix ?? "-")",
        ])
    }

    func upstreamAnswered(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) {
        guard let loop, let context, forwarding != nil else { return }
        // In place: taken out first, the forwarded request (some 500 bytes) was copied four
        // times on its way into `answer` (`memcpy` calls counted by uprobe, docs/benchmarks.md,
        // eleventh session). Nothing may start another forward while it is answered here, so a
        // pipelined request the reply makes due starts after it (`respond`).
        answering = true
        forwarding!.answer(consume result, pipeline: pipeline(loop: loop, context: context))
        answering = false
        forwarding.clear()
        if serveNextAfterAnswer {
            serveNextAfterAnswer = false
            if let next = queued.popFirst() { serve(next) }
        }
    }

    /// Bytes that never became a request head (malformed, too large, or too slow): a JSON-RPC
    /// error with a fresh request ID, one log line, and the connection closes.
    private func refuseUnframed(_ refusal: HTTP1ParseError?, loop: LoopState, context: ChannelHandlerContext) {
        let requestID = loop.requestIDs.next()
        let status = refusal.map { HTTPResponseStatus(statusCode: $0.status) } ?? .requestTimeout
        let message = refusal?.message ?? "request head not received within \(gateway.settings.headerTimeout.nanoseconds / 1_000_000) ms"
        _ = state.replyReady(clientKeepsAlive: false)
        queued.removeAll()
        // A refused head may still be arriving (a 200 KB header): linger so the client reads the answer.
        let answer = Responder.unframed(status: status, message: message, requestID: requestID, allocator: allocator)
        closeAfter(context.writeAndFlush(wrapOutboundOut(answer)), linger: refusal != nil, context: context)
        RequestRecorder.recordUnframed(requestID: requestID, status: status, message: message, gateway: gateway)
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

    /// Stage 7: the reply goes out, then stage 8 records it, then the next queued request runs.
    func respond(_ reply: consuming GatewayReply, facts: borrowing RequestFacts) {
        guard let loop, let context, let (request, bytesIn, refused) = serving.take() else { return }
        activeSinceIdleCheck = true
        let action = state.replyReady(clientKeepsAlive: request.head.keepAlive && !closeAfterReply)
        let keepAlive = action != .close
        let decodedOut = request.head.method == .head ? 0 : reply.body.readableBytes
        let (head, body, bytesOut, coding) = Responder.encode(
            &reply, facts: facts, requestID: request.requestID, headRequest: request.head.method == .head,
            minorVersion: request.head.minorVersion, keepAlive: keepAlive, accepts: request.head.answerCoding,
            compressor: loop.answerCompressor(gateway.settings.compression), scratch: &scratch, allocator: allocator)
        if let body {
            context.write(wrapOutboundOut(head), promise: nil)
            if keepAlive {
                context.writeAndFlush(wrapOutboundOut(body), promise: nil)
            } else {
                closeAfter(context.writeAndFlush(wrapOutboundOut(body)), linger: refused && state.stopped, context: context)
            }
        } else if keepAlive {
            context.writeAndFlush(wrapOutboundOut(head), promise: nil)
        } else {
            closeAfter(context.writeAndFlush(wrapOutboundOut(head)), linger: refused && state.stopped, context: context)
        }
        if keepAlive { scratch = head }
        RequestRecorder.record(reply, facts: facts, request: request, bytesIn: bytesIn,
            out: BodySize(coding: coding ?? .identity, wire: bytesOut, decoded: decodedOut), gateway: gateway, loop: loop)
        // Kept only while small: a parked request holds its read buffer (the head and body are
        // slices of it), and an idle connection should not hold a big upload.
        if keepAlive, request.head.bytes.storageCapacity <= Self.spareBufferLimit, request.body.storageCapacity <= Self.spareBufferLimit {
            spare = request
        }
        switch action {
        case .close:
            queued.removeAll()
        case .keepAlive(let serveNext, let resumeReads):
            if resumeReads { setAutoRead(true) }
            if serveNext, answering {
                serveNextAfterAnswer = true
            } else if serveNext, let next = queued.popFirst() {
                serve(next)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case is ChannelShouldQuiesceEvent:
            // Shutdown: finish what was asked, then close; an idle connection closes now.
            if state.quiesce() { context.close(promise: nil) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
