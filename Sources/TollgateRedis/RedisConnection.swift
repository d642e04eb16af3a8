import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TollgateCore

/// One connection to one Redis server, pipelined: commands go out as they are sent and answers
/// are matched to them in order. Pushes (RESP3 `>`, or pub/sub messages on a RESP2 subscriber
/// connection) go to `onPush` instead.
public final class RedisConnection: Sendable {
    public struct Options: Sendable {
        public var user: String?
        public var password: String?
        /// Read at every connect when set (one trailing newline dropped); `password` is the
        /// fallback while the file cannot be read (mid-rotation).
        public var passwordFile: String?
        /// TLS for this connection; nil for plain TCP.
        public var tls: TLSConfiguration?
        public var connectTimeout: TimeAmount
        public var commandTimeout: TimeAmount
        /// Ask for RESP3 (`HELLO 3`), falling back to RESP2 on servers before 6.
        public var resp3: Bool

        public init(
            user: String? = nil, password: String? = nil, passwordFile: String? = nil, tls: TLSConfiguration? = nil,
            connectTimeout: TimeAmount = .seconds(2), commandTimeout: TimeAmount = .seconds(2), resp3: Bool = true
        ) {
            self.user = user
            self.password = password
            self.passwordFile = passwordFile
            self.tls = tls
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.resp3 = resp3
        }
    }

    public let host: String
    public let port: Int
    let channel: any Channel
    let commandTimeout: TimeAmount
    public var eventLoop: any EventLoop { channel.eventLoop }
    public var isActive: Bool { channel.isActive }
    /// Completes when the connection closes, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(host: String, port: Int, channel: any Channel, commandTimeout: TimeAmount) {
        self.host = host
        self.port = port
        self.channel = channel
        self.commandTimeout = commandTimeout
    }

    /// Connects, then authenticates and picks the protocol (`HELLO 3 AUTH user pass`, or `AUTH`
    /// on RESP2 servers).
    public static func connect(
        host: String, port: Int, options: Options = Options(), eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next(),
        subscriber: Bool = false, onPush: (@Sendable (RESPValue) -> Void)? = nil
    ) async throws -> RedisConnection {
        let tlsContext = try options.tls.map { try NIOSSLContext(configuration: $0) }
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(options.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tlsContext {
                            let handler = try NIOSSLClientHandler(context: tlsContext, serverHostname: host.first?.isNumber == true ? nil : host)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        }
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                        try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(subscriber: subscriber, onPush: onPush))
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw RedisError.connectionClosed("connect to \(host):\(port) failed: \(error)")
        }
        let connection = RedisConnection(host: host, port: port, channel: channel, commandTimeout: options.commandTimeout)
        do {
            try await connection.handshake(options)
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    private func handshake(_ options: Options) async throws {
        var options = options
        if let file = options.passwordFile, let current = SecretFile.readLine(file) { options.password = current }
        if options.resp3 {
            var hello: [RESPArgument] = ["HELLO", "3"]
            if let password = options.password { hello += ["AUTH", .string(options.user ?? "default"), .string(password)] }
            do {
                _ = try await send(hello)
                return
            } catch RedisError.server(let message) where message.hasPrefix("ERR unknown command") || message.hasPrefix("NOPROTO") {
                // A RESP2-only server: authenticate the old way below.
            }
        }
        if let password = options.password {
            let auth: [RESPArgument] = options.user.map { ["AUTH", .string($0), .string(password)] } ?? ["AUTH", .string(password)]
            _ = try await send(auth)
        }
    }

    /// Sends one command; answers in order with the other commands on this connection.
    /// An error reply throws `RedisError.server`.
    public func send(_ arguments: [RESPArgument]) async throws -> RESPValue {
        let value = try await sendFuture(arguments).get()
        if case .error(let message) = value { throw RedisError.server(message) }
        return value
    }

    /// Sends several commands in one write; returns their answers (error replies included, as
    /// values) in order.
    public func pipeline(_ commands: [[RESPArgument]]) async throws -> [RESPValue] {
        let futures = commands.map { sendFuture($0, flush: false) }
        channel.flush()
        var answers: [RESPValue] = []
        for future in futures { answers.append(try await future.get()) }
        return answers
    }

    func sendFuture(_ arguments: [RESPArgument], flush: Bool = true) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let command = RedisCommand(arguments: arguments, promise: promise, timeout: commandTimeout)
        // A write on a channel already closed (a failed TLS handshake, say) never reaches the
        // command handler, which would otherwise fail the command: fail it here, or its caller
        // waits forever. (A promise completed twice keeps its first result.)
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in promise.fail(RedisError.connectionClosed("\(error)")) }
        if flush {
            channel.writeAndFlush(command, promise: written)
        } else {
            channel.write(command, promise: written)
        }
        return promise.futureResult
    }

    public func close() {
        channel.close(promise: nil)
    }
}

struct RedisCommand {
    var arguments: [RESPArgument]
    var promise: EventLoopPromise<RESPValue>
    var timeout: TimeAmount
}

/// Matches answers to commands in order; times out the oldest command by closing the
/// connection (answers after a lost one could no longer be matched).
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisCommand
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<(promise: EventLoopPromise<RESPValue>, deadline: NIODeadline)>()
    private var timer: Scheduled<Void>?
    private let subscriber: Bool
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private var closed = false
    /// Why the connection is being closed, reported to every waiting command once it is.
    private var closing: RedisError?

    init(subscriber: Bool, onPush: (@Sendable (RESPValue) -> Void)?) {
        self.subscriber = subscriber
        self.onPush = onPush
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        guard !closed else {
            command.promise.fail(RedisError.connectionClosed("closed"))
            promise?.fail(RedisError.connectionClosed("closed"))
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        RESPEncoder.write(command.arguments, into: &buffer)
        waiting.append((command.promise, .now() + command.timeout))
        if timer == nil { arm(context) }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push = value {
            // RESP3 subscribe confirmations are pushes too, and answer the SUBSCRIBE command.
            if let kind = value.elements?.first?.string?.lowercased(), Self.confirmations.contains(kind), let first = waiting.popFirst() {
                first.promise.succeed(value)
            } else {
                onPush?(value)
            }
            return
        }
        if subscriber, let kind = value.elements?.first?.string?.lowercased(), kind == "message" || kind == "pmessage" {
            onPush?(value)
            return
        }
        guard let first = waiting.popFirst() else {
            onPush?(value)
            return
        }
        first.promise.succeed(value)
    }

    static let confirmations: Set<String> = ["subscribe", "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe", "sunsubscribe"]

    private func arm(_ context: ChannelHandlerContext) {
        guard let oldest = waiting.first else { return }
        timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: oldest.deadline) { [weak self] in
            self?.checkTimeouts(context)
        }
    }

    private func checkTimeouts(_ context: ChannelHandlerContext) {
        timer = nil
        guard let oldest = waiting.first else { return }
        if oldest.deadline <= .now() {
            // Close first: by the time a waiting command hears of the timeout the connection is
            // inactive, so its pool makes a new one instead of reusing this.
            closing = .timeout
            context.close(promise: nil)
        } else {
            arm(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(closing ?? RedisError.connectionClosed("closed by peer"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closing = closing ?? RedisError.connectionClosed("\(error)")
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        closed = true
        timer?.cancel()
        timer = nil
        while let entry = waiting.popFirst() { entry.promise.fail(error) }
    }
}
