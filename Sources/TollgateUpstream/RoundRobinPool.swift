import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TollgateCore

/// A network's nodes on one event loop: round-robin, keep-alive, one retry on another node.
///
/// Every connection here belongs to `eventLoop`, the loop that accepted the client connection,
/// so a request never crosses threads and nothing here needs a lock. All methods must be called
/// on `eventLoop`.
public final class RoundRobinPool: UpstreamPool, @unchecked Sendable {
    public let network: String
    let eventLoop: any EventLoop
    private let settings: UpstreamNetwork
    private let tls: NIOSSLContext?
    private let logger: Logger
    private var idle: [[UpstreamConnection]]
    private var next = 0
    private var closed = false

    public init(network: UpstreamNetwork, eventLoop: any EventLoop, tls: NIOSSLContext?, logger: Logger) {
        self.network = network.name
        self.settings = network
        self.eventLoop = eventLoop
        self.tls = tls
        self.logger = logger
        self.idle = Array(repeating: [], count: network.nodes.count)
    }

    public func execute(_ request: UpstreamRequest) -> EventLoopFuture<UpstreamResponse> {
        eventLoop.assertInEventLoop()
        guard !settings.nodes.isEmpty else {
            return eventLoop.makeFailedFuture(UpstreamFailure.unavailable(network: network))
        }
        let first = next % settings.nodes.count
        next &+= 1
        let started = NIODeadline.now()
        // One try, then at most one more on the next node: a pool of two bad nodes answers fast.
        let order = settings.nodes.count > 1 ? [first, (first + 1) % settings.nodes.count] : [first]
        return attempt(request, order: order, index: 0, started: started, lastError: nil)
    }

    private func attempt(
        _ request: UpstreamRequest, order: [Int], index: Int, started: NIODeadline, lastError: UpstreamFailure?
    ) -> EventLoopFuture<UpstreamResponse> {
        guard index < order.count else {
            return eventLoop.makeFailedFuture(lastError ?? .unavailable(network: network))
        }
        let nodeIndex = order[index]
        let node = settings.nodes[nodeIndex]
        let remaining = settings.timeout.nanoseconds - (NIODeadline.now() - started).nanoseconds
        guard remaining > 0 else {
            return eventLoop.makeFailedFuture(UpstreamFailure.timeout(network: network, node: node.name))
        }
        return exchange(request, nodeIndex: nodeIndex, timeout: .nanoseconds(remaining), reuse: true)
            .flatMap { response -> EventLoopFuture<UpstreamResponse> in
                if response.status.code >= 500 && request.retryable && index + 1 < order.count {
                    self.logger.debug("upstream 5xx, trying next node", metadata: ["node": "\(node.name)", "status": "\(response.status.code)"])
                    return self.attempt(
                        request, order: order, index: index + 1, started: started,
                        lastError: .badGateway(network: self.network, detail: "node \(node.name) answered \(response.status.code)"))
                }
                if response.status.code >= 500 {
                    return self.eventLoop.makeFailedFuture(
                        UpstreamFailure.badGateway(network: self.network, detail: "node \(node.name) answered \(response.status.code)"))
                }
                var answered = response
                answered.attempts = index + 1
                answered.upstreamNanos = (NIODeadline.now() - started).nanoseconds
                return self.eventLoop.makeSucceededFuture(answered)
            }
            .flatMapError { error -> EventLoopFuture<UpstreamResponse> in
                guard let failure = error as? NodeFailure else { return self.eventLoop.makeFailedFuture(error) }
                switch failure {
                case .timeout:
                    return self.eventLoop.makeFailedFuture(UpstreamFailure.timeout(network: self.network, node: node.name))
                case .connect, .closedBeforeSend:
                    // Nothing reached the node: always safe to try another.
                    self.logger.debug("upstream connect failed", metadata: ["node": "\(node.name)"])
                    return self.attempt(request, order: order, index: index + 1, started: started, lastError: .unavailable(network: self.network))
                case .broken(let detail):
                    let failure = UpstreamFailure.badGateway(network: self.network, detail: "node \(node.name): \(detail)")
                    guard request.retryable else { return self.eventLoop.makeFailedFuture(failure) }
                    return self.attempt(request, order: order, index: index + 1, started: started, lastError: failure)
                }
            }
    }

    private enum NodeFailure: Error {
        case connect
        case closedBeforeSend
        case timeout
        case broken(String)
    }

    /// One request on one node. A kept-alive connection the node closed while idle fails before
    /// any response byte; that is retried once on a fresh connection to the same node.
    private func exchange(
        _ request: UpstreamRequest, nodeIndex: Int, timeout: TimeAmount, reuse: Bool
    ) -> EventLoopFuture<UpstreamResponse> {
        let node = settings.nodes[nodeIndex]
        let reused = reuse ? takeIdle(nodeIndex) : nil
        let connection: EventLoopFuture<UpstreamConnection> =
            reused.map { eventLoop.makeSucceededFuture($0) } ?? connect(nodeIndex)
        return connection.flatMapError { _ in self.eventLoop.makeFailedFuture(NodeFailure.connect) }
            .flatMap { connection in
                connection.send(request, timeout: timeout, maxResponseBytes: self.settings.maxResponseBytes)
                    .flatMapError { error -> EventLoopFuture<UpstreamResponseHandler.Response> in
                        switch error as? UpstreamResponseHandler.ExchangeError {
                        case .timeout: return self.eventLoop.makeFailedFuture(NodeFailure.timeout)
                        case .closed(beforeResponse: true) where reused != nil:
                            return self.eventLoop.makeFailedFuture(NodeFailure.closedBeforeSend)
                        case .tooLarge: return self.eventLoop.makeFailedFuture(NodeFailure.broken("response too large"))
                        default: return self.eventLoop.makeFailedFuture(NodeFailure.broken("connection lost"))
                        }
                    }
                    .map { response in
                        if response.keepAlive { self.putIdle(connection, nodeIndex) } else { connection.channel.close(promise: nil) }
                        return UpstreamResponse(status: response.status, body: response.body, node: node.name, attempts: 1, upstreamNanos: 0)
                    }
            }
            .flatMapError { error in
                if case .closedBeforeSend = error as? NodeFailure {
                    return self.exchange(request, nodeIndex: nodeIndex, timeout: timeout, reuse: false)
                }
                return self.eventLoop.makeFailedFuture(error)
            }
    }

    private func takeIdle(_ nodeIndex: Int) -> UpstreamConnection? {
        while let connection = idle[nodeIndex].popLast() {
            if connection.isActive { return connection }
        }
        return nil
    }

    private func putIdle(_ connection: UpstreamConnection, _ nodeIndex: Int) {
        guard !closed, connection.isActive, idle[nodeIndex].count < settings.maxIdlePerNode else {
            connection.channel.close(promise: nil)
            return
        }
        idle[nodeIndex].append(connection)
    }

    private func connect(_ nodeIndex: Int) -> EventLoopFuture<UpstreamConnection> {
        let node = settings.nodes[nodeIndex]
        let handler = UpstreamResponseHandler()
        let tls = node.scheme == .https ? self.tls : nil
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(settings.connectTimeout.nanoseconds))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if let tls {
                        let hostname = IPAddressCheck.isAddress(node.host) ? nil : node.host
                        try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
                    }
                    try sync.addHTTPClientHandlers()
                    try sync.addHandler(handler)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(host: node.host, port: node.port)
            .map { channel in
                let connection = UpstreamConnection(channel: channel, node: node, handler: handler)
                handler.onInactive = { [weak self, weak connection] in
                    guard let self, let connection else { return }
                    self.idle[nodeIndex].removeAll { $0 === connection }
                }
                return connection
            }
    }

    /// Dials each node until one accepts: an idle pooled connection proves nothing about now.
    public func probe() -> EventLoopFuture<Bool> {
        func tryNode(_ index: Int) -> EventLoopFuture<Bool> {
            guard index < settings.nodes.count else { return eventLoop.makeSucceededFuture(false) }
            return connect(index).map { connection in
                self.putIdle(connection, index)
                return true
            }.flatMapError { _ in tryNode(index + 1) }
        }
        return tryNode(0)
    }

    public func close() {
        closed = true
        for connections in idle { for connection in connections { connection.channel.close(promise: nil) } }
        idle = Array(repeating: [], count: settings.nodes.count)
    }
}

enum IPAddressCheck {
    static func isAddress(_ host: String) -> Bool {
        host.contains(":") || host.split(separator: ".").allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }
}
