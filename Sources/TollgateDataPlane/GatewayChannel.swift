import NIOCore

/// The handlers of one client connection, in order from the socket: idle timeout → the
/// gateway, which frames requests itself (`HTTP1RequestParser`) and writes responses as bytes
/// (`Responder`). No NIO HTTP codec: see docs/architecture.md for why and what it saves.
public enum GatewayChannel {
    public static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, gateway: Gateway) throws {
        try pipeline.addHandler(IdleStateHandler(readTimeout: gateway.settings.idleTimeout))
        try pipeline.addHandler(GatewayHandler(gateway: gateway))
    }
}
