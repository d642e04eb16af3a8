import Logging
import NIOCore
import NIOHTTP1
import NIOWebSocket
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC

/// One client WebSocket after the hand-over: RFC 6455 frames in (NIO's decoder), JSON-RPC
/// messages through the same `RequestPipeline` as HTTP requests (every message is
/// authenticated, checked, limited, cached and forwarded as a POST would be, with the
/// hand-over's head standing in for its headers), answers out in the order they complete.
///
/// The socket is bounded three ways: a message larger than the server's body cap closes it
/// (1009); a client that does not read, so that more than `webSocketSendBuffer` bytes wait to
/// be sent, is closed (1008) and counted, never buffered further; a client that answers no
/// ping for a whole interval is dropped. On shutdown, calls in flight are answered, then the
/// client hears 1001.
final class WebSocketSession: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    struct Opened {
        var head: HTTP1RequestHead
        var client: IPAddress?
        var network: String
        var keyPrefix: String
        var requestID: String
        /// Given back when the socket closes: the key's connection and WebSocket slots.
        var connectionSlot: KeyConnectionCount?
        var webSocketSlot: KeyConnectionCount?
        /// The key's slot in the fleet-wide count, when one was taken.
        var sharedSlot: (counter: any SharedConnectionCounter, keyID: Int64)?
    }

    private let gateway: Gateway
    private let loop: LoopState
    private var opened: Opened
    private var context: ChannelHandlerContext?
    /// A message arriving in fragments.
    private var fragments: ByteBuffer?
    private var inFlight = 0
    private var quiescing = false
    private enum Closing { case open, closeSent, done }
    private var closing = Closing.open
    private var readSincePing = true
    private var pingTimer: Scheduled<Void>?
    private var removed = false
    /// Live subscriptions by the id the client was given.
    private var live: [String: Subscription] = [:]
    private struct Subscription {
        var kind: String
        var key: KeyContext
        var feed: String
        /// The slot asked of the fleet-wide count (Redis), when there is one: given back when
        /// the subscription ends, if it was taken.
        var fleetSlot: EventLoopFuture<Bool>?
    }

    init(gateway: Gateway, loop: LoopState, opened: Opened) {
        self.gateway = gateway
        self.loop = loop
        self.opened = opened
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let bound = gateway.settings.webSocketSendBuffer
        context.channel.setOption(.writeBufferWaterMark, value: .init(low: bound / 2, high: bound)).whenFailure { _ in }
        gateway.metrics.webSocketOpened(network: opened.network)
        schedulePing(context.eventLoop)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        guard !removed else { return }
        removed = true
        pingTimer?.cancel()
        pingTimer = nil
        opened.connectionSlot?.release()
        opened.webSocketSlot?.release()
        opened.connectionSlot = nil
        opened.webSocketSlot = nil
        if let (counter, keyID) = opened.sharedSlot.take() { Task { await counter.release(keyID: keyID) } }
        for id in live.keys { end(id) }
        gateway.metrics.webSocketClosed(network: opened.network)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = .done
        context.fireChannelInactive()
    }

    // MARK: Frames in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        readSincePing = true
        guard closing == .open else {
            // After our close, only the client's close matters: the handshake is complete.
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        }
        // §5.1: a client's frames are masked; an unmasked one is a protocol error.
        guard frame.maskKey != nil else { return close(.protocolError, "client frames must be masked") }
        switch frame.opcode {
        case .text, .binary:
            guard fragments == nil else { return close(.protocolError, "a new message began before the last one ended") }
            if frame.fin {
                message(frame.unmaskedData)
            } else {
                fragments = frame.unmaskedData
                checkSize()
            }
        case .continuation:
            guard var buffer = fragments else { return close(.protocolError, "a continuation frame without a message") }
            var data = frame.unmaskedData
            buffer.writeBuffer(&data)
            fragments = buffer
            guard checkSize() else { return }
            if frame.fin {
                fragments = nil
                message(buffer)
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .pong:
            break
        case .connectionClose:
            // Echo the client's code (§5.5.1), then the server closes the TCP connection first.
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode() ?? .normalClosure
            closing = .done
            var reply = context.channel.allocator.buffer(capacity: 2)
            reply.write(webSocketErrorCode: code)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply))).whenComplete { _ in
                channel.close(promise: nil)
            }
        default:
            close(.protocolError, "unknown opcode")
        }
    }

    /// A message in pieces may not grow past the server's body cap.
    @discardableResult
    private func checkSize() -> Bool {
        guard let fragments, fragments.readableBytes > gateway.settings.maxBodyBytes else { return true }
        self.fragments = nil
        close(.messageTooLarge, "message exceeds \(gateway.settings.maxBodyBytes) bytes")
        return false
    }

    /// One JSON-RPC message (a call or a batch) through the pipeline.
    private func message(_ body: ByteBuffer) {
        let request = GatewayRequest(
            head: opened.head, body: body, requestID: loop.requestIDs.next(), client: opened.client, startedAt: gateway.clock(),
            webSocket: .message)
        inFlight += 1
        if quiescing {
            var facts = RequestFacts()
            facts.network = opened.network
            facts.client = opened.client
            let reply = GatewayReply.error(.serviceUnavailable, RPCError(code: RPCError.internalError, message: "server is shutting down; reconnect"),
                request: body, allocator: context!.channel.allocator)
            return answered(reply, facts: facts, request: request)
        }
        WebSocketCall(session: self, request: request).run()
    }

    func pipeline(for call: WebSocketCall) -> RequestPipeline {
        RequestPipeline(gateway: gateway, loop: loop, allocator: context?.channel.allocator ?? ByteBufferAllocator(), connection: call)
    }

    // MARK: Answers out

    /// A call's answer: a text frame with the JSON-RPC response, then its record.
    func answered(_ reply: GatewayReply, facts: RequestFacts, request: GatewayRequest) {
        inFlight -= 1
        let bytesOut = reply.body.readableBytes
        if let context, closing == .open {
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: reply.body)), promise: nil)
        }
        RequestRecorder.record(reply, facts: facts, request: request, bytesIn: request.body.readableBytes,
            out: BodySize(wire: bytesOut, decoded: bytesOut), gateway: gateway, loop: loop)
        if facts.authFailure != nil, reply.status == .unauthorized || reply.status == .forbidden {
            // The key was revoked, expired or narrowed since the hand-over: the socket goes too.
            close(.policyViolation, "API key no longer allowed")
        } else if quiescing, inFlight == 0 {
            close(.goingAway, "server shutting down")
        }
    }

    /// Sends a close frame and closes the connection once the client answers it, or after a
    /// second at most.
    private func close(_ code: WebSocketErrorCode, _ reason: String) {
        guard let context, closing == .open else { return }
        closing = .closeSent
        var data = context.channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(String(reason.prefix(120)))
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)), promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        if code != .goingAway, code != .normalClosure {
            gateway.logger.info("websocket closed", metadata: [
                "request_id": "\(opened.requestID)", "code": "\(UInt16(webSocketErrorCode: code))", "reason": "\(reason)",
                "network": "\(opened.network)", "key": "\(opened.keyPrefix)",
            ])
        }
    }

    /// More than the send bound waits for a client that does not read: it is closed, and
    /// nothing more is queued for it.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable, closing == .open {
            gateway.metrics.webSocketSlowConsumer()
            close(.policyViolation, "client is not reading: more than \(gateway.settings.webSocketSendBuffer) bytes wait to be sent")
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Subscriptions

    /// `eth_subscribe` (admitted like a call: its CU charged, the plan's method lists applied)
    /// joins the network's shared feed under an id of its own; `eth_unsubscribe` leaves it.
    ///
    /// With a fleet-wide count (Redis), a new subscription's slot is taken there too before the
    /// answer: the one wait on this path, once per subscription. A count that cannot be reached
    /// leaves this replica's own count in charge.
    func subscription(_ call: RPCCall, body: ByteBuffer, key: KeyContext, facts: RequestFacts, request: GatewayRequest, pipeline: RequestPipeline) {
        switch subscribe(call, body: body, key: key) {
        case .refused(let refusal):
            pipeline.refuse(refusal, facts, context: key, echo: body)
        case .answer(let result, let join, let subscription):
            let id = call.id.flatMap { body.getString(at: body.readerIndex + $0.lowerBound, length: $0.count) } ?? "null"
            let answer = { [self] in
                answered(GatewayReply(status: .ok, body: ByteBuffer(string: #"{"jsonrpc":"2.0","id":\#(id),"result":\#(result)}"#)),
                    facts: facts, request: request)
                join?()
            }
            guard let subscription, let counter = gateway.subscriptionCounter, let context else { return answer() }
            let keyID = key.record.id, max = key.plan.maxSubscriptions
            let taken = context.eventLoop.makeFutureWithTask { try await counter.acquire(keyID: keyID, max: max) }
            live[subscription]?.fleetSlot = taken
            taken.assumeIsolated().whenComplete { [self] result in
                // The socket closed meanwhile: `end` already gave everything back.
                guard self.context != nil, live[subscription] != nil else { return }
                switch result {
                case .success(true):
                    answer()
                case .success(false):
                    end(subscription)
                    pipeline.refuse(Refusal(.tooManyRequests, RPCError.limitExceeded,
                        "this key already has \(max) subscriptions across the fleet, the plan's maximum", id: call.id), facts, context: key, echo: body)
                case .failure(let error):
                    gateway.logger.warning("subscription count across replicas unavailable; this replica's count applies", metadata: [
                        "request_id": "\(request.requestID)", "error": "\(error)",
                    ])
                    answer()
                }
            }
        }
    }

    /// A batch's subscription calls: their answers, comma-joined, and the feeds to join once the
    /// batch's answer has gone out (so a client sees each new id before its first event).
    func subscriptions(_ calls: [RPCCall], body: ByteBuffer, key: KeyContext) -> (answers: [UInt8], joins: [() -> Void]) {
        var answers: [UInt8] = []
        var joins: [() -> Void] = []
        for call in calls {
            if !answers.isEmpty { answers.append(UInt8(ascii: ",")) }
            switch subscribe(call, body: body, key: key) {
            case .refused(let refusal):
                RPCErrorWriter.append(refusal.error, id: call.id, body: body, to: &answers)
            case .answer(let result, let join, let subscription):
                // A batch's answer is written at once, so its subscriptions are admitted on this
                // replica's count; the fleet-wide count still holds them, for the calls after.
                if let subscription, let counter = gateway.subscriptionCounter, let context {
                    let keyID = key.record.id
                    live[subscription]?.fleetSlot = context.eventLoop.makeFutureWithTask { try await counter.acquire(keyID: keyID, max: .max) }
                }
                answers.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
                if let id = call.id {
                    answers.append(contentsOf: body.getBytes(at: body.readerIndex + id.lowerBound, length: id.count) ?? Array("null".utf8))
                } else {
                    answers.append(contentsOf: "null".utf8)
                }
                answers.append(contentsOf: #","result":"#.utf8)
                answers.append(contentsOf: result.utf8)
                answers.append(UInt8(ascii: "}"))
                if let join { joins.append(join) }
            }
        }
        return (answers, joins)
    }

    enum SubscriptionOutcome {
        /// The call's result (JSON), the feed to join once it has been sent, and the id of the
        /// subscription it made (nil for `eth_unsubscribe`).
        case answer(String, join: (() -> Void)?, made: String?)
        case refused(Refusal)
    }

    /// One subscription call's effect on this socket: the id taken (or given back) now, the
    /// feed joined by the caller once the answer is out.
    private func subscribe(_ call: RPCCall, body: ByteBuffer, key: KeyContext) -> SubscriptionOutcome {
        let params = RPCParams.of(call, in: body)
        func refuse(_ status: HTTPResponseStatus, _ code: Int, _ message: String) -> SubscriptionOutcome {
            .refused(Refusal(status, code, message, id: call.id))
        }
        if call.method == "eth_unsubscribe" {
            guard let id = params?[0]?.stringValue else { return refuse(.badRequest, RPCError.invalidParams, "eth_unsubscribe takes a subscription id") }
            let existed = live[id] != nil
            end(id)
            return .answer(existed ? "true" : "false", join: nil, made: nil)
        }
        let kind = params?[0]?.stringValue ?? ""
        let logic: any FeedLogic
        switch kind {
        case "newHeads": logic = HeadsLogic()
        case "newPendingTransactions": logic = PendingLogic()
        case "logs":
            guard let filter = LogsLogic.filter(params?[1]) else {
                return refuse(.badRequest, RPCError.invalidParams, "a logs filter is an object with address and topics")
            }
            logic = LogsLogic(filter: filter)
        default:
            return refuse(.badRequest, RPCError.invalidParams,
                "unknown subscription '\(kind.prefix(40))'; newHeads, logs and newPendingTransactions are served")
        }
        guard let hub = gateway.subscriptions, hub.serves(opened.network) else {
            return refuse(.serviceUnavailable, RPCError.internalError, "network '\(opened.network)' has no WebSocket upstream (ws_url) for subscriptions")
        }
        guard let context, key.subscriptions.tryAcquire(max: key.plan.maxSubscriptions) else {
            return refuse(.tooManyRequests, RPCError.limitExceeded,
                "this key already has \(key.plan.maxSubscriptions) subscriptions, the plan's maximum")
        }
        var id = "0x"
        for _ in 0..<2 {
            let word = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            id += String(repeating: "0", count: 16 - word.count) + word
        }
        live[id] = Subscription(kind: kind, key: key, feed: SubscriptionHub.key(network: opened.network, logic: logic))
        gateway.metrics.webSocketSubscriptions(network: opened.network, kind: kind, change: 1)
        let network = opened.network, client = FeedClient(session: self, id: id, eventLoop: context.eventLoop)
        return .answer("\"\(id)\"", join: { hub.join(network: network, logic: logic, client: client) }, made: id)
    }

    private func end(_ id: String) {
        guard let subscription = live.removeValue(forKey: id) else { return }
        subscription.key.subscriptions.release()
        if let slot = subscription.fleetSlot, let counter = gateway.subscriptionCounter {
            let keyID = subscription.key.record.id
            slot.whenSuccess { taken in if taken { Task { await counter.release(keyID: keyID) } } }
        }
        gateway.metrics.webSocketSubscriptions(network: opened.network, kind: subscription.kind, change: -1)
        gateway.subscriptions?.leave(key: subscription.feed, id: id)
    }

    /// Events from the feed, in order: one notification each, then one flush; their compute
    /// units are charged to the key and recorded (method `eth_subscription`).
    func deliver(subscription id: String, kind: String, events: [String]) {
        guard let context, closing == .open, let key = live[id]?.key else { return }
        var bytes = 0
        for event in events {
            var buffer = context.channel.allocator.buffer(capacity: 96 + event.utf8.count)
            buffer.writeStaticString(#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":""#)
            buffer.writeString(id)
            buffer.writeStaticString(#"","result":"#)
            buffer.writeString(event)
            buffer.writeStaticString("}}")
            bytes += buffer.readableBytes
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: buffer)), promise: nil)
        }
        context.flush()
        let cost = (key.plan.eventCU[kind] ?? 0) * events.count
        var facts = RequestFacts()
        facts.network = opened.network
        facts.client = opened.client
        facts.method = "eth_subscription"
        facts.plan = key.plan.name
        facts.keyID = key.record.id
        facts.keyPrefix = key.record.prefix
        facts.computeUnits = cost
        facts.batchSize = events.count
        let admission = key.admit(calls: 0, cu: cost, now: gateway.clock())
        if case .admitted = admission { facts.chargedCU = cost }
        let request = GatewayRequest(head: opened.head, body: ByteBuffer(), requestID: opened.requestID, client: opened.client, startedAt: gateway.clock())
        RequestRecorder.record(GatewayReply(status: .ok, body: ByteBuffer()), facts: facts, request: request,
            bytesIn: 0, out: BodySize(wire: bytes, decoded: bytes), gateway: gateway, loop: loop)
        if case .quotaExhausted(let limit) = admission {
            // Events are not refused one by one (each client would see gaps); the socket ends.
            close(.policyViolation, "monthly compute unit quota of \(limit) is spent")
        }
    }

    // MARK: Liveness and shutdown

    private func schedulePing(_ eventLoop: any EventLoop) {
        let interval = gateway.settings.webSocketPingInterval
        // Strong capture: `handlerRemoved` cancels it.
        pingTimer = eventLoop.assumeIsolated().scheduleTask(in: interval) { self.ping() }
    }

    private func ping() {
        guard let context, !removed, closing == .open else { return }
        guard readSincePing else {
            // Not a byte (not even a pong) for a whole interval: the client is gone.
            context.close(promise: nil)
            return
        }
        readSincePing = false
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: context.channel.allocator.buffer(capacity: 0))),
            promise: nil)
        schedulePing(context.eventLoop)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // Shutdown: calls in flight are answered first, then 1001.
            quiescing = true
            if inFlight == 0 { close(.goingAway, "server shutting down") }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
