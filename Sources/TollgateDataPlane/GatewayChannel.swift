import NIOCore
import NIOHTTP1

/// The handlers of one client connection, in order from the socket:
/// idle timeout → HTTP/1.1 request decoder → protocol-error answers → the gateway.
/// Responses are written as bytes by the gateway handler itself (see `ResponseHead`).
public enum GatewayChannel {
    public static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, gateway: Gateway) throws {
        try pipeline.addHandler(IdleStateHandler(readTimeout: gateway.settings.idleTimeout))
        try pipeline.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        try pipeline.addHandler(ProtocolErrorHandler())
        try pipeline.addHandler(GatewayHandler(gateway: gateway))
    }
}
