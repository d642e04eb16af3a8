import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import TollgateCore

/// The data-plane listener as a `Service`.
///
/// On graceful shutdown (SIGTERM) it stops accepting, lets each connection finish the request
/// it is serving (`ServerQuiescingHelper` + the HTTP pipeline handler close idle keep-alive
/// connections), and returns once all are closed or `drainTimeout` has passed.
public final class GatewayServer: Service, Sendable {
    private let gateway: Gateway
    private let group: any EventLoopGroup
    private let host: String
    private let port: Int
    private let drainTimeout: Duration
    private let bound: EventLoopPromise<SocketAddress>
    /// HTTPS when set: the context new connections handshake with (reloaded in place).
    private let tls: ServerTLS?
    /// TLS-ALPN-01: the challenge context for a domain being proved, for `TLSHelloRouter`.
    private let alpnChallenge: (@Sendable (String) -> NIOSSLContext?)?

    public init(
        gateway: Gateway, group: any EventLoopGroup, host: String, port: Int, drainTimeout: Duration = .seconds(30), tls: ServerTLS? = nil,
        alpnChallenge: (@Sendable (String) -> NIOSSLContext?)? = nil
    ) {
        self.alpnChallenge = alpnChallenge
        self.tls = tls
        self.gateway = gateway
        self.group = group
        self.host = host
        self.port = port
        self.drainTimeout = drainTimeout
        self.bound = group.next().makePromise(of: SocketAddress.self)
    }

    /// The address the server listens on, once it does (port 0 in tests picks a free port).
    public var localAddress: SocketAddress {
        get async throws { try await bound.futureResult.get() }
    }

    public func run() async throws {
        let quiesce = ServerQuiescingHelper(group: group)
        let gateway = self.gateway
        let limiter = ConnectionLimiter(maxTotal: gateway.settings.maxConnections, maxPerAddress: gateway.settings.maxConnectionsPerIP)
        let tls = self.tls
        let alpnChallenge = self.alpnChallenge
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                    }
                }
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .childChannelInitializer { channel in
                    let address = channel.remoteAddress?.ipAddress.flatMap { IPAddress($0) }
                    // On the channel's own loop: its copy of the blocklist, no lock.
                    if let address, let loop = gateway.loops[channel.eventLoop], !loop.blocklist.isEmpty, loop.blocklist.contains(address) {
                        gateway.metrics.connectionRefused(reason: "blocklist")
                        return channel.close()
                    }
                    if let refusal = limiter.admit(address) {
                        gateway.metrics.connectionRefused(reason: refusal.rawValue)
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in limiter.release(address) }
                    return channel.eventLoop.makeCompletedFuture {
                        if let tls, let alpnChallenge {
                            try channel.pipeline.syncOperations.addHandler(TLSHelloRouter(tls: tls, challenge: alpnChallenge))
                        } else if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                        }
                        try GatewayChannel.configure(channel.pipeline.syncOperations, gateway: gateway)
                    }
                }
                .bind(host: host, port: port)
                .get()
        } catch {
            bound.fail(error)
            throw error
        }
        bound.succeed(channel.localAddress!)
        gateway.logger.info("gateway listening", metadata: ["address": "\(channel.localAddress!)", "tls": "\(tls != nil)"])

        let drained = group.next().makePromise(of: Void.self)
        try await withGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onGracefulShutdown: {
            gateway.logger.info("draining connections")
            quiesce.initiateShutdown(promise: drained)
        }
        // The listener is closed; wait for in-flight requests, up to the deadline.
        let deadline = group.next().scheduleTask(in: .nanoseconds(drainTimeout.nanoseconds)) {
            drained.succeed(())
        }
        try? await drained.futureResult.get()
        deadline.cancel()
        gateway.subscriptions?.shutdown()
        for loop in gateway.loops.all {
            try? await loop.eventLoop.submit { for pool in loop.pools.values { pool.close() } }.get()
        }
        gateway.logger.info("gateway stopped")
    }
}

