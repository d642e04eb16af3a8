import Foundation
import NIOCore
import NIOPosix
import NIOWebSocket

/// A test WebSocket client: sends the hand-over as raw bytes (so tests can send any head),
/// reads the answer's head, and on 101 reads frames with NIO's decoder. Every frame it sends
/// is masked, as a client's must be, unless a test asks otherwise.
final class TestWebSocket: Sendable {
    enum Event: Sendable {
        case head(status: Int, headers: [(String, String)], body: String)
        case frame(WebSocketFrame)
        case closed
    }

    private let channel: any Channel
    private let iterator: IteratorBox
    let status: Int
    let headers: [(String, String)]
    let refusalBody: String

    final class IteratorBox: @unchecked Sendable {
        var iterator: AsyncStream<Event>.AsyncIterator
        init(_ iterator: AsyncStream<Event>.AsyncIterator) { self.iterator = iterator }
    }

    private init(channel: any Channel, iterator: IteratorBox, status: Int, headers: [(String, String)], body: String) {
        self.channel = channel
        self.iterator = iterator
        self.status = status
        self.headers = headers
        self.refusalBody = body
    }

    static let nonce = "dGhlIHNhbXBsZSBub25jZQ=="

    /// Opens a connection and sends the hand-over; returns once the server's head is read.
    static func connect(
        port: Int, path: String, headers: [(String, String)] = [], raw: String? = nil, receiveBuffer: Int? = nil
    ) async throws -> TestWebSocket {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self)
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let receiveBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(receiveBuffer)) }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HandOverReader(continuation: continuation))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var text = raw ?? "GET \(path) HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \(nonce)\r\nSec-WebSocket-Version: 13\r\n"
        if raw == nil {
            for (name, value) in headers { text += "\(name): \(value)\r\n" }
            text += "\r\n"
        }
        try await channel.writeAndFlush(ByteBuffer(string: text))
        let box = IteratorBox(stream.makeAsyncIterator())
        guard case .head(let status, let heads, let body) = try await Self.next(box, timeout: .seconds(10)) else { throw TestClientTimeout() }
        return TestWebSocket(channel: channel, iterator: box, status: status, headers: heads, body: body)
    }

    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }

    func send(text: String, masked: Bool = true) async throws {
        try await send(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), masked: masked)
    }

    func send(_ frame: WebSocketFrame, masked: Bool = true) async throws {
        var frame = frame
        if masked { frame.maskKey = .random() }  // the encoder applies it
        try await channel.writeAndFlush(frame)
    }

    /// The next frame (pings answered by the test, if it wants, not here), or nil once closed.
    func nextFrame(timeout: Duration = .seconds(10)) async throws -> WebSocketFrame? {
        switch try await Self.next(iterator, timeout: timeout) {
        case .frame(let frame): return frame
        case .closed, .none: return nil
        case .head: return try await nextFrame(timeout: timeout)
        }
    }

    /// The next text message, skipping pings and pongs; nil once closed or on a close frame.
    func nextText(timeout: Duration = .seconds(10)) async throws -> String? {
        while let frame = try await nextFrame(timeout: timeout) {
            switch frame.opcode {
            case .text: return String(buffer: frame.data)
            case .connectionClose: return nil
            default: continue
            }
        }
        return nil
    }

    /// Reads until the server's close frame and returns its code (nil: the TCP connection ended without one).
    func closeCode(timeout: Duration = .seconds(10)) async throws -> UInt16? {
        while let frame = try await nextFrame(timeout: timeout) {
            if frame.opcode == .connectionClose {
                var data = frame.data
                return data.readInteger(as: UInt16.self)
            }
        }
        return nil
    }

    var isClosed: Bool { !channel.isActive }

    func setAutoRead(_ on: Bool) async throws {
        try await channel.setOption(.autoRead, value: on).get()
    }

    func close() async {
        try? await channel.close()
    }

    private static func next(_ box: IteratorBox, timeout: Duration) async throws -> Event? {
        try await withTestTimeout(timeout) { await box.iterator.next() }
    }
}

/// Reads the server's answer head as bytes; after a 101, puts NIO's frame decoder in front of
/// a frame forwarder and hands it the bytes that followed the head.
private final class HandOverReader: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<TestWebSocket.Event>.Continuation
    nonisolated(unsafe) var pending: [UInt8] = []
    nonisolated(unsafe) var done = false

    init(continuation: AsyncStream<TestWebSocket.Event>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        pending += unwrapInboundIn(data).readableBytesView
        let separator: [UInt8] = [13, 10, 13, 10]
        guard pending.count >= 4, let end = (0...(pending.count - 4)).first(where: { Array(pending[$0..<$0 + 4]) == separator }) else { return }
        done = true
        var lines = String(decoding: pending[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let rest = Array(pending[(end + 4)...])
        pending = []
        guard status == 101 else {
            continuation.yield(.head(status: status, headers: headers, body: String(decoding: rest, as: UTF8.self)))
            return
        }
        continuation.yield(.head(status: status, headers: headers, body: ""))
        let sync = context.pipeline.syncOperations
        try? sync.addHandler(FrameForwarder(continuation: continuation), position: .after(self))
        try? sync.addHandler(WebSocketFrameEncoder(), position: .after(self))
        try? sync.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 24)), position: .after(self))
        if !rest.isEmpty { context.fireChannelRead(NIOAny(ByteBuffer(bytes: rest))) }
        sync.removeHandler(context: context, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done { continuation.yield(.closed) }
        if !done { continuation.finish() }
        context.fireChannelInactive()
    }
}

private final class FrameForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    let continuation: AsyncStream<TestWebSocket.Event>.Continuation

    init(continuation: AsyncStream<TestWebSocket.Event>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(.frame(unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.yield(.closed)
        continuation.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
