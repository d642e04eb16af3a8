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

    public func execute(_ request: UpstreamRequest, completion: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void) {
        eventLoop.assertInEventLoop()
        let count = settings.nodes.count
        guard count > 0 else {
            completion(.failure(.unavailable(network: network)))
            return
        }
        let first = next % count
        next &+= 1
        // One try, then at most one more on the next node: a pool of two bad nodes answers fast.
        attempt(request, node: first, fallback: count > 1 ? (first + 1) % count : nil, number: 1, started: .now(), completion: completion)
    }

    private func attempt(
        _ request: UpstreamRequest, node nodeIndex: Int, fallback: Int?, number: Int, started: NIODeadline,
        completion: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void
    ) {
        let node = settings.nodes[nodeIndex]
        let remaining = settings.timeout.nanoseconds - (NIODeadline.now() - started).nanoseconds
        guard remaining > 0 else {
            completion(.failure(.timeout(network: network, node: node.name)))
            return
        }
        let retry: (UpstreamFailure) -> Void = { failure in
            if let fallback {
                self.attempt(request, node: fallback, fallback: nil, number: number + 1, started: started, completion: completion)
            } else {
                completion(.failure(failure))
            }
        }
        exchange(request, nodeIndex: nodeIndex, timeout: .nanoseconds(remaining), reuse: true) { result in
            switch result {
            case .success(var response):
                if response.status.code >= 500 {
                    let failure = UpstreamFailure.badGateway(network: self.network, detail: "node \(node.name) answered \(response.status.code)")
                    self.logger.debug("upstream 5xx", metadata: [
                        "request_id": "\(request.requestID)", "node": "\(node.name)", "status": "\(response.status.code)",
                    ])
                    if request.retryable { retry(failure) } else { completion(.failure(failure)) }
                    return
                }
                response.attempts = number
                response.upstreamNanos = (NIODeadline.now() - started).nanoseconds
                completion(.success(response))
            case .failure(.timeout):
                completion(.failure(.timeout(network: self.network, node: node.name)))
            case .failure(.connect):
                // Nothing reached the node: always safe to try another.
                self.logger.debug("upstream connect failed", metadata: ["request_id": "\(request.requestID)", "node": "\(node.name)"])
                retry(.unavailable(network: self.network))
            case .failure(.broken(let detail)):
                let failure = UpstreamFailure.badGateway(network: self.network, detail: "node \(node.name): \(detail)")
                if request.retryable { retry(failure) } else { completion(.failure(failure)) }
            }
        }
    }

    private enum NodeFailure: Error {
        case connect
        case timeout
        case broken(String)
    }

    /// One request on one node, on a pooled connection if there is one.
    private func exchange(
        _ request: UpstreamRequest, nodeIndex: Int, timeout: TimeAmount, reuse: Bool,
        completion: @escaping (Result<UpstreamResponse, NodeFailure>) -> Void
    ) {
        if reuse, let connection = takeIdle(nodeIndex) {
            send(request, on: connection, nodeIndex: nodeIndex, reused: true, timeout: timeout, completion: completion)
            return
        }
        connect(nodeIndex).whenComplete { result in
            switch result {
            case .success(let connection):
                self.send(request, on: connection, nodeIndex: nodeIndex, reused: false, timeout: timeout, completion: completion)
            case .failure:
                completion(.failure(.connect))
            }
        }
    }

    private func send(
        _ request: UpstreamRequest, on connection: UpstreamConnection, nodeIndex: Int, reused: Bool, timeout: TimeAmount,
        completion: @escaping (Result<UpstreamResponse, NodeFailure>) -> Void
    ) {
        connection.send(request, timeout: timeout, maxResponseBytes: settings.maxResponseBytes) { result in
            switch result {
            case .success(let response):
                if response.keepAlive { self.putIdle(connection, nodeIndex) } else { connection.channel.close(promise: nil) }
                completion(.success(UpstreamResponse(
                    status: response.status, body: response.body, node: connection.node.name, attempts: 1, upstreamNanos: 0)))
            case .failure(.timeout):
                completion(.failure(.timeout))
            case .failure(.closed(beforeResponse: true)) where reused && request.retryable:
                // The node closed a kept-alive connection while it sat idle: dial afresh.
                self.exchange(request, nodeIndex: nodeIndex, timeout: timeout, reuse: false, completion: completion)
            case .failure(.tooLarge):
                completion(.failure(.broken("response too large")))
            case .failure:
                completion(.failure(.broken("connection lost")))
            }
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
                    try sync.addHandler(RequestBytesWriter())
                    try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
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
