import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle

/// The operations listener (`/metrics`, later `/status`), separate from the data plane so that
/// scrapes never queue behind client traffic and can be firewalled apart.
public final class OpsServer: Service, Sendable {
    public typealias Route = @Sendable () async -> (status: HTTPResponseStatus, contentType: String, body: String)

    private let routes: [String: Route]
    private let group: any EventLoopGroup
    private let host: String
    private let port: Int
    private let logger: Logger
    private let bound: EventLoopPromise<SocketAddress>
    /// HTTPS (and, with a client CA, mTLS for scrapers) when set.
    private let tls: ServerTLS?

    public init(routes: [String: Route], group: any EventLoopGroup, host: String, port: Int, logger: Logger, tls: ServerTLS? = nil) {
        self.tls = tls
        self.routes = routes
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
        let tls = self.tls
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context)) }
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(OpsHandler(routes: routes))
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
    private var head: HTTPRequestHead?

    init(routes: [String: OpsServer.Route]) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let path = String(head.uri.prefix { $0 != "?" })
            let box = NIOLoopBound(context, eventLoop: context.eventLoop)
            guard head.method == .GET, let route = routes[path] else {
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
