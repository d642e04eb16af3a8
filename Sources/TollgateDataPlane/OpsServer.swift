import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The operations listener (`GET /metrics`, `GET /status`, `POST /reload`), separate from the
/// data plane so that scrapes never queue behind client traffic and can be firewalled apart.
///
/// Actions (POST) change the running server, so they are taken only from a loopback peer, or
/// from any peer when the listener requires client certificates (mTLS): a scrape-only network
/// path cannot reload the config.
public final class OpsServer: Service, Sendable {
    public typealias Route = @Sendable () async -> (status: HTTPResponseStatus, contentType: String, body: String)

    private let routes: [String: Route]
    private let actions: [String: Route]
    private let actionsFromAnyPeer: Bool
    private let group: any EventLoopGroup
    private let host: String
    private let port: Int
    private let logger: Logger
    private let bound: EventLoopPromise<SocketAddress>
    /// HTTPS (and, with a client CA, mTLS for scrapers) when set.
    private let tls: ServerTLS?

    /// - Parameters:
    ///   - actions: POST routes; taken from loopback peers only unless `clientCertificatesRequired`.
    public init(
        routes: [String: Route], actions: [String: Route] = [:], group: any EventLoopGroup, host: String, port: Int, logger: Logger,
        tls: ServerTLS? = nil, clientCertificatesRequired: Bool = false
    ) {
        self.tls = tls
        self.routes = routes
        self.actions = actions
        self.actionsFromAnyPeer = tls != nil && clientCertificatesRequired
        self.group = group
        self.host = host
        self.port = port
        self.logger = logger
        self.bound = group.next().makePromise(of: SocketAddress.self)
    }

    public var localAddress: SocketAddress {
        get async throws { try await bound.futureResult.get() }
    }

    public func run() async throws {
        let routes = self.routes
        let actions = self.actions
        let anyPeer = self.actionsFromAnyPeer
        let tls = self.tls
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context)) }
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(OpsHandler(routes: routes, actions: actions, actionsFromAnyPeer: anyPeer))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            bound.fail(error)
            throw error
        }
        bound.succeed(channel.localAddress!)
        logger.info("metrics listening", metadata: ["address": "\(channel.localAddress!)"])
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
    }
}

final class OpsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: [String: OpsServer.Route]
    private let actions: [String: OpsServer.Route]
    private let actionsFromAnyPeer: Bool
    private var head: HTTPRequestHead?

    init(routes: [String: OpsServer.Route], actions: [String: OpsServer.Route], actionsFromAnyPeer: Bool) {
        self.routes = routes
        self.actions = actions
        self.actionsFromAnyPeer = actionsFromAnyPeer
    }

    /// 127.0.0.0/8 or ::1 (also as an IPv4-mapped address).
    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let text = address?.ipAddress else { return false }
        switch address {
        case .v4: return text.hasPrefix("127.")
        case .v6: return text == "::1" || text.hasPrefix("::ffff:127.")
        default: return false
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = String(head.uri.prefix { $0 != "?" })
            let box = NIOLoopBound(context, eventLoop: context.eventLoop)
            let route: OpsServer.Route
            if head.method == .GET, let found = routes[path] {
                route = found
            } else if head.method == .POST, let found = actions[path] {
                guard actionsFromAnyPeer || Self.isLoopback(context.channel.remoteAddress) else {
                    respond(box.value, head, (.forbidden, "text/plain", "actions are taken from loopback, or with a client certificate (mTLS)\n"))
                    return
                }
                route = found
            } else if routes[path] != nil || actions[path] != nil {
                respond(box.value, head, (.methodNotAllowed, "text/plain", "method not allowed\n"))
                return
            } else {
                respond(box.value, head, (.notFound, "text/plain", "not found\n"))
                return
            }
            context.eventLoop.makeFutureWithTask { await route() }.assumeIsolated().whenSuccess { result in
                self.respond(box.value, head, result)
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ result: (status: HTTPResponseStatus, contentType: String, body: String)) {
        let body = context.channel.allocator.buffer(string: result.body)
        var headers = HTTPHeaders([("Content-Type", result.contentType), ("Content-Length", String(body.readableBytes))])
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: result.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !head.isKeepAlive { channel.close(promise: nil) }
        }
    }
}
