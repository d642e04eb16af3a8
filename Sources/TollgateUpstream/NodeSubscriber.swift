import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket
import TollgateJSONRPC

/// One `eth_subscribe` on one node over its WebSocket URL (`upstreams[].ws_url`): connects
/// with NIO's WebSocket client upgrader, subscribes, and hands each notification's `result`
/// (the node's bytes) to `onEvent`, on the subscriber's event loop. `onClosed` runs once, when
/// the node closes, refuses the subscription, or `close` is called; the feed that owns the
/// subscriber then moves to another node.
public final class NodeSubscriber {
    public struct Endpoint: Sendable, Equatable {
        /// `host:port`, for logs and metrics (never the URL: it may carry a key).
        public var name: String
        public var host: String
        public var port: Int
        public var path: String
        public var tls: Bool
        /// The node's own TLS client context (`wss://` to a private CA or with a client
        /// certificate); nil: the system's roots.
        public var tlsContext: UpstreamTLS?
        /// The node's HTTP name (`host:port` of its `url`), by which the health board knows it.
        public var healthName: String?

        /// `ws://` or `wss://` with a host, optional port and path.
        public init?(url: String) {
            var rest: Substring
            if url.hasPrefix("ws://") { tls = false; rest = url.dropFirst(5) }
            else if url.hasPrefix("wss://") { tls = true; rest = url.dropFirst(6) }
            else { return nil }
            guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            rest = rest.dropFirst(authority.count)
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
                guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else { return nil }
                host = String(authority[..<colon])
                self.port = port
            } else {
                host = String(authority)
                port = tls ? 443 : 80
            }
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            path = rest.isEmpty ? "/" : String(rest)
            name = "\(host):\(port)"
        }
    }

    public let endpoint: Endpoint
    private let eventLoop: any EventLoop
    private var channel: (any Channel)?
    private var closed = false
    private let onEvent: (String) -> Void
    private let onClosed: (String) -> Void

    /// - Parameter params: the `eth_subscribe` params as JSON text, e.g. `["newHeads"]`.
    public init(
        endpoint: Endpoint, params: String, eventLoop: any EventLoop, connectTimeout: TimeAmount = .seconds(3),
        onEvent: @escaping (String) -> Void, onClosed: @escaping (String) -> Void
    ) {
        self.endpoint = endpoint
        self.eventLoop = eventLoop
        self.onEvent = onEvent
        self.onClosed = onClosed
        connect(params: params, timeout: connectTimeout)
    }

    public func close() {
        guard !closed else { return }
        channel?.close(promise: nil)
        finish("closed by the gateway")
    }

    private func finish(_ reason: String) {
        guard !closed else { return }
        closed = true
        onClosed(reason)
    }

    private func connect(params: String, timeout: TimeAmount) {
        let endpoint = self.endpoint
        let subscribe = #"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":\#(params)}"#
        let loop = eventLoop
        let frames = FrameHandler(subscribe: subscribe)
        let bound = NIOLoopBound(self, eventLoop: loop)
        frames.onEvent = { bound.value.onEvent($0) }
        frames.onClosed = { bound.value.finish($0) }
        let framesBox = NIOLoopBound(frames, eventLoop: loop)
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.port == (endpoint.tls ? 443 : 80) ? endpoint.host : "\(endpoint.host):\(endpoint.port)")
        headers.add(name: "Content-Length", value: "0")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: endpoint.path, headers: headers)
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if endpoint.tls {
                        let context = try endpoint.tlsContext?.context ?? NIOSSLContext(configuration: .makeClientConfiguration())
                        try sync.addHandler(try NIOSSLClientHandler(context: context, serverHostname: endpoint.host))
                    }
                    let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24, automaticErrorHandling: true) { channel, _ in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(framesBox.value) }
                    }
                    try sync.addHTTPClientHandlers(withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try sync.addHandler(UpgradeRequester(head: head))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .assumeIsolated()
            .whenComplete { result in
                let subscriber = bound.value
                switch result {
                case .success(let channel):
                    subscriber.channel = channel
                    if subscriber.closed { channel.close(promise: nil) }
                    channel.closeFuture.assumeIsolated().whenComplete { _ in subscriber.finish("the node closed the connection") }
                case .failure(let error):
                    subscriber.finish("cannot connect: \(error)")
                }
            }
    }
}

/// Sends the hand-over request once connected (NIO's upgrade handler adds the WebSocket
/// headers); lets everything else through, and closes on an error, such as a node that
/// answered the hand-over with something other than 101.
private final class UpgradeRequester: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Never
    typealias OutboundOut = HTTPClientRequestPart
    let head: HTTPRequestHead

    init(head: HTTPRequestHead) { self.head = head }

    func channelActive(context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// After the hand-over: subscribes, answers pings, and reads notifications.
private final class FrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame
    let subscribe: String
    var onEvent: ((String) -> Void)?
    var onClosed: ((String) -> Void)?
    private var subscription: String?

    init(subscribe: String) { self.subscribe = subscribe }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { send(subscribe, context: context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            guard let answer = RPCResponseReader.answers(frame.unmaskedData)?.first else { return }
            if let params = answer.params {
                // A notification: its result, if it is for our subscription.
                guard let inner = RPCResponseReader.answers(ByteBuffer(string: params))?.first, let result = inner.result,
                    subscription == nil || inner.subscription == subscription
                else { return }
                onEvent?(result)
            } else if answer.id == "1" {
                guard let result = answer.result else {
                    onClosed?("the node refused the subscription")
                    context.close(promise: nil)
                    return
                }
                subscription = result
            }
        case .ping:
            var pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            pong.maskKey = .random()
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    private func send(_ text: String, context: ChannelHandlerContext) {
        var frame = WebSocketFrame(fin: true, opcode: .text, data: context.channel.allocator.buffer(string: text))
        frame.maskKey = .random()
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
