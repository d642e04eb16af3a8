import NIOCore
import NIOPosix

/// A replica that passes a balancer's health checks (`GET /readyz` answers 200) and closes every
/// other connection after reading its request, without a byte of answer: what a replica that
/// crashed mid-request, or closed a keep-alive connection as a request arrived, looks like to
/// HAProxy. Unlike a dead address, the balancer keeps it in rotation, so a test can count on
/// requests meeting it (and on `retry-on empty-response` sending them elsewhere).
struct HalfDeadReplica {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    static func start() async throws -> HalfDeadReplica {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture { try child.pipeline.syncOperations.addHandler(Handler()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return HalfDeadReplica(channel: channel)
    }

    func stop() async { try? await channel.close() }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var head = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            head += bytes.readString(length: bytes.readableBytes) ?? ""
            guard head.contains("\r\n\r\n") else { return }
            if head.hasPrefix("GET /readyz ") {
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                // Written at once on a writable socket; the close then follows it out.
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: answer)), promise: nil)
                context.close(promise: nil)
            } else {
                context.close(promise: nil)
            }
        }
    }
}
