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
    }

    /// Lets a caller abandon an exchange (the losing leg of a hedge): its connection is closed,
    /// so the node stops working for nobody.
    final class Handle {
        fileprivate var channel: (any Channel)?
        private(set) var cancelled = false
        /// Set once the exchange has completed: its connection may be back in the idle pool
        /// serving someone else, so cancelling must not touch it.
        private(set) var done = false

        /// Called first thing by the exchange's completion (by the caller: wrapping every
        /// completion in one more closure would cost an allocation per request).
        func complete() { done = true }

        func cancel() {
            guard !done else { return }
            cancelled = true
            channel?.close(promise: nil)
        }
    }

    /// One request on a pooled connection if there is one, else a new one. A kept-alive
    /// connection the node closed while idle is redialled once, for requests safe to resend.
    /// A caller that may `cancel` the exchange calls `handle.complete()` when `completion` runs.
    func exchange(
        _ request: UpstreamRequest, timeout: TimeAmount, handle: Handle = Handle(),
        completion: @escaping (Result<UpstreamResponse, Failure>) -> Void
    ) {
        if let connection = takeIdle() {
            handle.channel = connection.channel
            send(request, on: connection, reused: true, timeout: timeout, handle: handle, completion: completion)
            return
        }
        connect().whenComplete { result in
            switch result {
            case .success(let connection):
                handle.channel = connection.channel
                if handle.cancelled {
                    connection.channel.close(promise: nil)
                    completion(.failure(.broken("cancelled")))
                    return
                }
                self.send(request, on: connection, reused: false, timeout: timeout, handle: handle, completion: completion)
            case .failure:
                completion(.failure(.connect))
            }
        }
    }

    private func send(
        _ request: UpstreamRequest, on connection: UpstreamConnection, reused: Bool, timeout: TimeAmount, handle: Handle,
        completion: @escaping (Result<UpstreamResponse, Failure>) -> Void
    ) {
        connection.send(request, timeout: timeout, maxResponseBytes: maxResponseBytes) { result in
            switch result {
            case .success(let response):
                if response.keepAlive { self.putIdle(connection) } else { connection.channel.close(promise: nil) }
                completion(.success(UpstreamResponse(status: response.status, body: response.body, node: self.node.name, attempts: 1, upstreamNanos: 0)))
            case .failure(.timeout):
                completion(.failure(.timeout))
            case .failure(.closed(beforeResponse: true)) where reused && request.retryable && !handle.cancelled:
                self.connect().whenComplete { result in
                    switch result {
                    case .success(let fresh):
                        handle.channel = fresh.channel
                        self.send(request, on: fresh, reused: false, timeout: timeout, handle: handle, completion: completion)
                    case .failure: completion(.failure(.connect))
                    }
                }
            case .failure(.tooLarge):
                completion(.failure(.broken("response too large")))
            case .failure:
                completion(.failure(.broken("connection lost")))
            }
        }
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
        let handler = NIOLoopBound(UpstreamResponseHandler(), eventLoop: eventLoop)
        let tls = node.scheme == .https ? self.tls : nil
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
                handler.value.onInactive = { [weak self, weak connection] in
                    guard let self, let connection else { return }
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

