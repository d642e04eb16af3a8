import CompressNIO
import NIOCore
import NIOHTTP1

final class FakeNodeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let node: FakeNode
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?

    init(node: FakeNode) { self.node = node }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        node.state.withLock {
            $0.connections += 1
            $0.open[ObjectIdentifier(channel)] = channel
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let id = ObjectIdentifier(context.channel)
        _ = node.state.withLock { $0.open.removeValue(forKey: id) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = nil
        case .body(var chunk):
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let head else { return }
            let body = self.body ?? ByteBuffer()
            if head.uri.hasPrefix("/__control/") {
                respond(context, head, control(String(head.uri.dropFirst("/__control/".count))))
                return
            }
            let isHealthCheck = head.headers.first(name: "X-Request-ID") == "health-check"
            let mode = node.state.withLock { state -> FakeNode.Mode in
                if isHealthCheck {
                    state.healthChecks += 1
                    return state.healthMode ?? state.mode
                }
                state.count += 1
                if node.keepRequests {
                    state.received.append(.init(path: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: String(buffer: body)))
                }
                return state.mode
            }
            switch mode {
            case .hang: return
            case .held:
                let loop = context.eventLoop
                let node = self.node
                let box = NIOLoopBound((self, context), eventLoop: loop)
                let parked: Bool = node.state.withLock { state in
                    guard state.mode == .held else { return false }  // released meanwhile
                    state.held.append { mode in
                        let answer = node.answer(body, mode: mode)
                        loop.execute { box.value.0.respond(box.value.1, head, answer) }
                    }
                    return true
                }
                if !parked { respond(context, head, node.answer(body, mode: node.state.withLock { $0.mode })) }
            case .drop:
                context.close(promise: nil)
                return
            case .slow(let delay), .slowStatus(let delay, _):
                let answer = node.answer(body, mode: mode)
                let box = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.eventLoop.assumeIsolated().scheduleTask(in: delay) { self.respond(box.value, head, answer) }
            default:
                respond(context, head, node.answer(body, mode: mode))
            }
        }
    }

    /// Steering for scripts (`bench/failover`): `healthy`, `slow/MS`, `status/CODE`, `hang`,
    /// `count` (client requests so far).
    private func control(_ command: String) -> (status: Int, body: String) {
        let parts = command.split(separator: "/")
        switch (parts.first, parts.count > 1 ? Int(parts[1]) : nil) {
        case ("healthy", _): node.setMode(.healthy)
        case ("slow", let ms?): node.setMode(.slow(.milliseconds(Int64(ms))))
        case ("status", let code?): node.setMode(.status(code))
        case ("hang", _): node.setMode(.hang)
        case ("count", _): return (200, String(node.requestCount))
        case ("subscribers", _): return (200, String(node.subscriberCount))
        default: return (404, "unknown control command")
        }
        return (200, "ok")
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ answer: (status: Int, body: String)) {
        var body = context.channel.allocator.buffer(string: answer.body)
        var headers = HTTPHeaders([("Content-Type", "application/json")])
        let asked = head.headers[canonicalForm: "accept-encoding"].contains { $0.lowercased() == "gzip" }
        // The broken codings are for client requests: health checks still see a working node.
        let healthCheck = head.headers.first(name: "X-Request-ID") == "health-check"
        let (gzip, bomb) = node.state.withLock { ($0.gzip, $0.bomb) }
        switch healthCheck && gzip != .off ? .whenAsked : gzip {
        case .off: break
        case .whenAsked where asked:
            var plain = body
            body = (try? plain.compress(with: .gzip())) ?? body
            headers.add(name: "Content-Encoding", value: "gzip")
        case .whenAsked: break
        case .bomb:
            // Spaces compress about 1000:1: a small answer that inflates to `bytes` (made by `setGzip`).
            body = bomb ?? body
            headers.add(name: "Content-Encoding", value: "gzip")
        case .truncated:
            var plain = body
            let whole = (try? plain.compress(with: .gzip())) ?? body
            body = whole.getSlice(at: whole.readerIndex, length: whole.readableBytes / 2)!
            headers.add(name: "Content-Encoding", value: "gzip")
        case .brotli:
            headers.add(name: "Content-Encoding", value: "br")
        }
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .init(statusCode: answer.status), headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
