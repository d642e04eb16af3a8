import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TollgateCore

/// One node's keep-alive connections on one event loop, and one request/response exchange.
/// All methods run on `eventLoop`.
final class NodeConnections {
    enum Failure: Error, Equatable {
        /// Nothing reached the node.
        case connect
        case timeout
        /// The exchange broke after the request may have reached the node.
        case broken(String)
    }

    /// Told when a node's compressed answer could not be used (counted by the application).
    private let undecodable: (@Sendable (UndecodableAnswer) -> Void)?

    let node: UpstreamNode
    let eventLoop: any EventLoop
    private let tls: NIOSSLContext?
    private let maxIdle: Int
    private let maxResponseBytes: Int
    private let connectTimeout: TimeAmount
    private var idle: [UpstreamConnection] = []
    private var closed = false

    init(node: UpstreamNode, eventLoop: any EventLoop, tls: NIOSSLContext?, settings: UpstreamNetwork) {
        self.node = node
        self.eventLoop = eventLoop
        self.tls = tls
        self.maxIdle = settings.maxIdlePerNode
        self.maxResponseBytes = settings.maxResponseBytes
        self.connectTimeout = .nanoseconds(settings.connectTimeout.nanoseconds)
        self.undecodable = settings.undecodableAnswer
    }

    /// One request/response exchange with the node: what to send, whom to tell, and how to
    /// abandon it (the losing leg of a hedge: its connection is closed, so the node stops
    /// working for nobody). The exchange's only allocation; the connection and its handler
    /// call back through it, with no closure per request.
    final class Exchange {
        /// Settable so that the pool can recycle an exchange for the next request's first leg
        /// (`PoolRequest.primary`), and set the leg's trace context in place.
        var request: UpstreamRequest
        private(set) var timeout: TimeAmount
        /// The caller's tag for this exchange (the leg of a try).
        private(set) var tag: Int
        fileprivate(set) var delegate: (any UpstreamExchangeDelegate)?
        fileprivate var owner: NodeConnections?
        fileprivate var connection: UpstreamConnection?
        fileprivate var reused = false
        private(set) var cancelled = false

        init(request: consuming UpstreamRequest, timeout: TimeAmount, tag: Int = 0, delegate: any UpstreamExchangeDelegate) {
            self.request = request
            self.timeout = timeout
            self.tag = tag
            self.delegate = delegate
        }

        /// An exchange that holds a request and is not started: `prepare` makes it a leg.
        init(request: consuming UpstreamRequest) {
            self.request = request
            self.timeout = .zero
            self.tag = 0
        }

        /// Makes an exchange that is not running (never started, or finished and held by its
        /// owner alone) one leg of a request. A finished exchange has no delegate, owner or
        /// connection left: `deliver` clears them before telling the delegate.
        func prepare(timeout: TimeAmount, tag: Int, delegate: any UpstreamExchangeDelegate) {
            assert(self.delegate == nil && owner == nil && connection == nil, "an exchange is prepared only while it does not run")
            self.timeout = timeout
            self.tag = tag
            self.delegate = delegate
            reused = false
            cancelled = false
        }

        /// Closes the exchange's connection; the delegate still hears once, with `cancelled` set.
        func cancel() {
            guard delegate != nil, !cancelled else { return }
            cancelled = true
            connection?.channel.close(promise: nil)
        }

        /// Called by the connection's handler once the response is in, or the exchange failed.
        /// `keepAlive`: the node left the connection open for another request.
        func ended(_ result: consuming Result<UpstreamResponse, UpstreamResponseHandler.ExchangeError>, keepAlive: Bool) {
            owner?.ended(self, result, keepAlive: keepAlive)
        }
    }

    /// One request on a pooled connection if there is one, else a new one. A kept-alive
    /// connection the node closed while idle is redialled once, for requests safe to resend.
    /// The exchange's delegate hears exactly once, on this loop.
    /// `now`: the caller's monotonic clock reading (`MonotonicClock`, NIO's clock) taken just
    /// before, which then starts the exchange's timeout on a pooled connection without a read
    /// of its own.
    func start(_ exchange: Exchange, now: Int64? = nil) {
        exchange.owner = self
        if let connection = takeIdle() {
            send(exchange, on: connection, reused: true, now: now.map { NIODeadline.uptimeNanoseconds(UInt64(max(0, $0))) })
            return
        }
        dial(exchange)
    }

    /// One exchange answered through a callback, for callers off the request path (health checks).
    func exchange(
        _ request: UpstreamRequest, timeout: TimeAmount, completion: @escaping (Result<UpstreamResponse, Failure>) -> Void
    ) {
        start(Exchange(request: request, timeout: timeout, delegate: CallbackDelegate(completion)))
    }

    private final class CallbackDelegate: UpstreamExchangeDelegate {
        let completion: (Result<UpstreamResponse, Failure>) -> Void
        init(_ completion: @escaping (Result<UpstreamResponse, Failure>) -> Void) { self.completion = completion }
        func exchange(_ exchange: Exchange, finished result: consuming Result<UpstreamResponse, Failure>) { completion(result) }
    }

    private func dial(_ exchange: Exchange) {
        connect().whenComplete { result in
            switch result {
            case .success(let connection):
                if exchange.cancelled {
                    connection.channel.close(promise: nil)
                    self.deliver(exchange, .failure(.broken("cancelled")))
                    return
                }
                self.send(exchange, on: connection, reused: false)
            case .failure:
                self.deliver(exchange, .failure(.connect))
            }
        }
    }

    private func send(_ exchange: Exchange, on connection: UpstreamConnection, reused: Bool, now: NIODeadline? = nil) {
        exchange.connection = connection
        exchange.reused = reused
        connection.send(exchange, maxResponseBytes: maxResponseBytes, now: now)
    }

    fileprivate func ended(
        _ exchange: Exchange, _ result: consuming Result<UpstreamResponse, UpstreamResponseHandler.ExchangeError>, keepAlive: Bool
    ) {
        guard let connection = exchange.connection else { return }
        connection.settled()
        switch consume result {
        case .success(let response):
            if keepAlive { putIdle(connection) } else { connection.channel.close(promise: nil) }
            deliver(exchange, .success(consume response))
        case .failure(.timeout):
            deliver(exchange, .failure(.timeout))
        case .failure(.closed(beforeResponse: true)) where exchange.reused && exchange.request.retryable && !exchange.cancelled:
            exchange.connection = nil
            dial(exchange)
        case .failure(.tooLarge):
            deliver(exchange, .failure(.broken("response too large")))
        case .failure(.undecodable(let reason)):
            undecodable?(reason)
            let detail = switch reason {
            case .tooLarge: "compressed answer inflates past \(maxResponseBytes) bytes"
            case .corrupt: "compressed answer is corrupt or truncated"
            case .unsupportedCoding: "answer in a content coding that was not asked for"
            }
            deliver(exchange, .failure(.broken(detail)))
        case .failure:
            deliver(exchange, .failure(.broken("connection lost")))
        }
    }

    private func deliver(_ exchange: Exchange, _ result: consuming Result<UpstreamResponse, Failure>) {
        guard let delegate = exchange.delegate else { return }
        exchange.delegate = nil
        exchange.owner = nil
        exchange.connection = nil
        delegate.exchange(exchange, finished: consume result)
    }

    private func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    private func putIdle(_ connection: UpstreamConnection) {
        guard !closed, connection.isActive, idle.count < maxIdle else {
            connection.channel.close(promise: nil)
            return
        }
        idle.append(connection)
    }

    /// Dials the node. Runs on `eventLoop`, and so does everything the connection does: its
    /// handler and this object cross no thread, which the loop-bound boxes state.
    func connect() -> EventLoopFuture<UpstreamConnection>.Isolated {
        let node = self.node
        let handler = NIOLoopBound(UpstreamResponseHandler(node: node.name), eventLoop: eventLoop)
        let tls = node.scheme == .https ? (node.tls?.context ?? self.tls) : nil
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        let hostname = IPAddress(node.host) == nil ? node.host : nil
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
                    }
                    try sync.addHandler(handler.value)
                }
            }
            .connect(host: node.host, port: node.port)
            .assumeIsolated()
            .map { channel in
                let connection = UpstreamConnection(channel: channel, node: node, handler: handler.value)
                // Strong captures, no `weak`: a weakly referenced object gets a side table, and
                // then every retain and release of it takes the runtime's slow path (measured:
                // ~2% of the process's samples). The handler drops the closure when the channel
                // goes inactive or the handler is removed, which ends the cycle.
                handler.value.onInactive = { [self, connection] in
                    self.idle.removeAll { $0 === connection }
                }
                return connection
            }
    }

    func close() {
        closed = true
        for connection in idle { connection.channel.close(promise: nil) }
        idle = []
    }
}


/// Hears how an exchange ended (the pool's request, for one of its legs).
protocol UpstreamExchangeDelegate: AnyObject {
    /// Runs once per exchange on its loop; `exchange.cancelled` tells a leg abandoned on purpose.
    func exchange(_ exchange: NodeConnections.Exchange, finished result: consuming Result<UpstreamResponse, NodeConnections.Failure>)
}
