import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A response as the test client saw it.
struct TestResponse: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: String
    /// The body's bytes as they came (a gzip body is not text).
    var bodyBytes: [UInt8] = []

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

struct TestClientTimeout: Error {}

/// `body`'s value, or `TestClientTimeout` once `timeout` passes: how test clients wait for a
/// socket's next event without hanging a test.
func withTestTimeout<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T?) async throws -> T? {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TestClientTimeout()
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}

/// A test HTTP/1.1 client that writes raw bytes, so tests can send anything (malformed
/// requests, pipelined requests, huge headers) and read the responses in order.
final class TestHTTPClient: Sendable {
    private let channel: any Channel
    private let responses: AsyncStream<TestResponse>
    private let iterator: IteratorBox

    final class IteratorBox: @unchecked Sendable {
        var iterator: AsyncStream<TestResponse>.AsyncIterator
        init(_ iterator: AsyncStream<TestResponse>.AsyncIterator) { self.iterator = iterator }
    }

    private init(channel: any Channel, responses: AsyncStream<TestResponse>) {
        self.channel = channel
        self.responses = responses
        self.iterator = IteratorBox(responses.makeAsyncIterator())
    }

    /// - Parameter tls: HTTPS with this client context (trust, client certificate).
    static func connect(port: Int, host: String = "127.0.0.1", tls: NIOSSLContext? = nil, serverHostname: String? = nil) async throws -> TestHTTPClient {
        let (stream, continuation) = AsyncStream.makeStream(of: TestResponse.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: serverHostname)) }
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(continuation: continuation))
                }
            }
            .connect(host: host, port: port).get()
        return TestHTTPClient(channel: channel, responses: stream)
    }

    func send(raw bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func send(raw text: String) async throws { try await send(raw: Array(text.utf8)) }

    /// The next response, or nil if the server closed the connection first.
    func next(timeout: Duration = .seconds(10)) async throws -> TestResponse? {
        let box = iterator
        return try await withTestTimeout(timeout) { await box.iterator.next() }
    }

    static func requestBytes(
        method: String = "POST", path: String, headers: [(String, String)] = [("Content-Type", "application/json")],
        body: [UInt8] = []
    ) -> [UInt8] {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if method != "GET" || !body.isEmpty { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + body
    }

    func request(
        method: String = "POST", path: String, headers: [(String, String)] = [("Content-Type", "application/json")],
        body: String = ""
    ) async throws -> TestResponse {
        try await send(raw: Self.requestBytes(method: method, path: path, headers: headers, body: Array(body.utf8)))
        guard let response = try await next() else { throw TestClientTimeout() }
        return response
    }

    /// The certificate the server presented (TLS connections), once the handshake is done.
    func peerCertificate() async throws -> NIOSSLCertificate? {
        let channel = self.channel
        return try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).peerCertificate
        }.get()
    }

    /// True once the server has closed the connection.
    var isClosed: Bool { !channel.isActive }

    func close() async {
        try? await channel.close()
    }

    /// One request on a fresh connection.
    static func post(port: Int, path: String, body: String, headers: [(String, String)] = [("Content-Type", "application/json")]) async throws -> TestResponse {
        let client = try await connect(port: port)
        defer { Task { await client.close() } }
        return try await client.request(path: path, headers: headers, body: body)
    }
}

/// Parses responses from raw bytes: status line, headers, and a `Content-Length` body (the
/// gateway always sends one). Independent of NIO's decoder, which needs to see each request.
private final class ResponseCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<TestResponse>.Continuation
    nonisolated(unsafe) var pending: [UInt8] = []

    init(continuation: AsyncStream<TestResponse>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += unwrapInboundIn(data).readableBytesView
        while let response = parseOne() { continuation.yield(response) }
    }

    private func parseOne() -> TestResponse? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard pending.count >= 4, let end = (0...(pending.count - 4)).first(where: { Array(pending[$0..<$0 + 4]) == separator }) else { return nil }
        let headText = String(decoding: pending[0..<end], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        guard pending.count >= end + 4 + length else { return nil }
        let bytes = Array(pending[(end + 4)..<(end + 4 + length)])
        pending.removeFirst(end + 4 + length)
        return TestResponse(status: status, headers: headers, body: String(decoding: bytes, as: UTF8.self), bodyBytes: bytes)
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}
