import NIOCore
import NIOEmbedded
import Testing
@testable import TollgateUpstream

/// Counts the `read` requests that reach the front of a pipeline: with `autoRead`, NIO sends
/// one from the tail after a read only when none is pending, so these are the reads a handler
/// asked for itself. (`EmbeddedChannel` reads nothing on its own.)
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Counts the `channelReadComplete` events that get past the handlers before it.
final class ReadCompleteSpy: ChannelInboundHandler {
    typealias InboundIn = Any
    var completes = 0

    func channelReadComplete(context: ChannelHandlerContext) {
        completes += 1
    }
}

/// A node connection's handler asks for each next read itself and keeps the end of a read to
/// itself (no walk to the pipeline's tail), and writes requests from its own place.
@Suite struct UpstreamReadDemandTests {
    @Test func aReadsEndAsksForTheNextReadAndGoesNoFurther() throws {
        let channel = EmbeddedChannel()
        let reads = ReadCounter()
        let spy = ReadCompleteSpy()
        let handler = UpstreamResponseHandler(node: "n")
        try channel.pipeline.syncOperations.addHandler(reads)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.pipeline.syncOperations.addHandler(spy)
        channel.pipeline.fireChannelReadComplete()
        channel.pipeline.fireChannelReadComplete()
        #expect(reads.reads == 2)
        #expect(spy.completes == 0)
        _ = try channel.finish()
    }

    @Test func requestsAreWrittenFromTheHandlersPlaceUntilItLeavesThePipeline() throws {
        let channel = EmbeddedChannel()
        let handler = UpstreamResponseHandler(node: "n")
        try channel.pipeline.syncOperations.addHandler(handler)
        #expect(handler.send(ByteBuffer(string: "POST / HTTP/1.1\r\n\r\n")))
        #expect(try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) } == "POST / HTTP/1.1\r\n\r\n")
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        #expect(!handler.send(ByteBuffer(string: "late")))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        _ = try channel.finish()
    }
}
