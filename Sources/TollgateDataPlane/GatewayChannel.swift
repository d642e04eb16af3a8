import NIOCore

/// The handler of one client connection: the gateway, which keeps its own idle and header
/// timers, frames requests itself (`HTTP1RequestParser`) and writes responses as bytes
/// (`Responder`). No NIO HTTP codec: see docs/architecture.md for why and what it saves.
public enum GatewayChannel {
    public static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, gateway: Gateway) throws {
        try pipeline.addHandler(GatewayHandler(gateway: gateway))
    }
}
