import NIOCore
import NIOSSL

/// In front of TLS on a gateway listener that proves domains with TLS-ALPN-01: reads the
/// ClientHello, then puts NIOSSL's handler behind itself with the challenge certificate for a
/// hello that offers only `acme-tls/1` and names a domain being proved (the CA's validator,
/// RFC 8737), or with the listener's own context for everyone else, hands it the bytes read so
/// far, and leaves. Only installed while `server.tls.acme.challenge` is `tls-alpn-01`.
final class TLSHelloRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let tls: ServerTLS
    private let challenge: @Sendable (String) -> NIOSSLContext?
    private var buffered: ByteBuffer?

    init(tls: ServerTLS, challenge: @escaping @Sendable (String) -> NIOSSLContext?) {
        self.tls = tls
        self.challenge = challenge
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var earlier = buffered.take() {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        switch TLSClientHello.read(bytes) {
        case .incomplete:
            buffered = bytes
        case .other:
            route(tls.context, bytes, context: context)
        case .hello(let serverName, let protocols):
            if protocols == ["acme-tls/1"], let serverName, let proof = challenge(serverName) {
                route(proof, bytes, context: context)
            } else {
                route(tls.context, bytes, context: context)
            }
        }
    }

    private func route(_ ssl: NIOSSLContext, _ bytes: ByteBuffer, context: ChannelHandlerContext) {
        do {
            try context.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: ssl), position: .after(self))
        } catch {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
