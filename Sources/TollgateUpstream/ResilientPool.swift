import Logging
import NIOCore
import NIOSSL
import TollgateCore

/// A network's nodes on one event loop, chosen so that bad nodes stop getting traffic.
///
/// Each request goes to a node that is on the right chain, passed its last health check, is not
/// too far behind the pool's head, has a circuit that admits it, has room, and takes the
/// method; among those, power-of-two-choices on peak-EWMA latency × load ÷ weight. Every answer
/// is classified: node-side failures count against the node's circuit and are retried on
/// another node (reads only, within the retry budget and the request deadline); client errors
/// pass through untouched.
///
/// Breakers, latency and in-flight counts are this loop's own view: a request never takes a
/// lock. All methods run on `eventLoop`.
public final class ResilientPool: UpstreamPool, @unchecked Sendable {
    struct Node {
        let connections: NodeConnections
        var breaker: CircuitBreaker
        var latency = PeakEWMA()
        var inFlight = 0
        var lastError: String?
    }

    public let network: String
    let eventLoop: any EventLoop
    private let settings: UpstreamNetwork
    private let health: NodeHealthBoard
    private let logger: Logger
    private var nodes: [Node]
    private var views: [NodeView]
    private var budget: RetryBudget
    private var random: SplitMix64

    public init(network: UpstreamNetwork, eventLoop: any EventLoop, tls: NIOSSLContext?, health: NodeHealthBoard, logger: Logger) {
        self.network = network.name
        self.settings = network
        self.eventLoop = eventLoop
        self.health = health
        self.logger = logger
        self.nodes = network.nodes.map {
            Node(connections: NodeConnections(node: $0, eventLoop: eventLoop, tls: tls, settings: network), breaker: CircuitBreaker(settings: network.circuitBreaker))
        }
        self.views = network.nodes.map { NodeView(weight: $0.weight, role: $0.role, maxInFlight: $0.maxInFlight, methods: $0.methods) }
        self.budget = RetryBudget(ratio: network.retryRatio)
        var seed = SystemRandomNumberGenerator()
        self.random = SplitMix64(seed: seed.next())
    }

    public func execute(_ request: UpstreamRequest, completion: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void) {
        eventLoop.assertInEventLoop()
        let now = Self.now()
        budget.recordRequest(now: now)
        let deadlines = self.deadlines(for: request.methods)
        attempt(request, tried: [], number: 1, started: now, deadlines: deadlines, lastFailure: nil, completion: completion)
    }

    /// (request, per-try) timeouts in nanoseconds: a method's own timeout replaces both.
    private func deadlines(for methods: [String]) -> (request: Int64, attempt: Int64) {
        guard !settings.methodTimeouts.isEmpty else {
            return (settings.timeout.nanoseconds, settings.attemptTimeout.nanoseconds)
        }
        var longest: Duration?
        for method in methods {
            for (matcher, timeout) in settings.methodTimeouts where matcher.matches(method) {
                longest = max(longest ?? timeout, timeout)
                break
            }
        }
        guard let longest else { return (settings.timeout.nanoseconds, settings.attemptTimeout.nanoseconds) }
        return (longest.nanoseconds, longest.nanoseconds)
    }

    private func attempt(
        _ request: UpstreamRequest, tried: Set<Int>, number: Int, started: Int64, deadlines: (request: Int64, attempt: Int64),
        lastFailure: UpstreamFailure?, completion: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void
    ) {
        let now = Self.now()
        let remaining = deadlines.request - (now - started)
        guard remaining > 0 else {
            completion(.failure(lastFailure ?? .timeout(network: network, node: "none")))
            return
        }
        refreshViews(now: now)
        let candidates = NodeSelection.eligible(views, methods: request.methods, maxLag: settings.maxBlockLag, excluding: tried)
        // A node whose circuit waits for a probe gets it first: that is how a recovered node
        // comes back. Otherwise power of two choices.
        let probing = candidates.first { nodes[$0].breaker.state != .closed }
        guard let index = probing ?? NodeSelection.choose(candidates, nodes: views, using: &random) else {
            completion(.failure(lastFailure ?? .unavailable(network: network)))
            return
        }
        let before = nodes[index].breaker.state.gaugeValue
        let (admitted, transition) = nodes[index].breaker.admit(now: now)
        report(transition, node: index, from: before)
        guard admitted else {
            attempt(request, tried: tried.union([index]), number: number, started: started, deadlines: deadlines, lastFailure: lastFailure, completion: completion)
            return
        }
        nodes[index].inFlight += 1
        let timeout = min(remaining, deadlines.attempt)
        let name = nodes[index].connections.node.name
        nodes[index].connections.exchange(request, timeout: .nanoseconds(timeout)) { result in
            let finished = Self.now()
            self.nodes[index].inFlight -= 1
            let failure: UpstreamFailure
            let sentToNode: Bool
            switch result {
            case .success(var response):
                switch UpstreamAnswerClassifier.classify(status: Int(response.status.code), body: response.body) {
                case .good:
                    self.finish(index, success: true, rtt: finished - now, error: nil)
                    response.attempts = number
                    response.upstreamNanos = finished - started
                    completion(.success(response))
                    return
                case .nodeFailure(let reason):
                    self.finish(index, success: false, rtt: finished - now, error: reason)
                    // A 2xx-4xx answer is still the node's word: pass it on if nobody better can answer.
                    if response.status.code < 500, !self.canRetry(request, tried: tried, index: index, number: number, now: finished) {
                        response.attempts = number
                        response.upstreamNanos = finished - started
                        completion(.success(response))
                        return
                    }
                    failure = .badGateway(network: self.network, detail: "node \(name): \(reason)")
                    sentToNode = true
                }
            case .failure(.connect):
                self.finish(index, success: false, rtt: nil, error: "connect failed")
                failure = .unavailable(network: self.network)
                sentToNode = false
            case .failure(.timeout):
                self.finish(index, success: false, rtt: finished - now, error: "timeout")
                failure = .timeout(network: self.network, node: name)
                sentToNode = true
            case .failure(.broken(let detail)):
                self.finish(index, success: false, rtt: nil, error: detail)
                failure = .badGateway(network: self.network, detail: "node \(name): \(detail)")
                sentToNode = true
            }
            // Writes go elsewhere only if nothing reached this node.
            guard (request.retryable || !sentToNode), self.canRetry(request, tried: tried, index: index, number: number, now: finished) else {
                completion(.failure(failure))
                return
            }
            self.logger.debug("retrying on another node", metadata: [
                "request_id": "\(request.requestID)", "node": "\(name)", "reason": "\(failure)",
            ])
            self.attempt(
                request, tried: tried.union([index]), number: number + 1, started: started, deadlines: deadlines, lastFailure: failure,
                completion: completion)
        }
    }

    private func canRetry(_ request: UpstreamRequest, tried: Set<Int>, index: Int, number: Int, now: Int64) -> Bool {
        guard number < settings.maxAttempts, tried.count + 1 < nodes.count else { return false }
        return budget.tryRetry(now: now)
    }

    /// A failure counts as a slow answer: a node that fails fast must not look fast.
    static let failurePenalty: Duration = .milliseconds(250)

    private func finish(_ index: Int, success: Bool, rtt: Int64?, error: String?) {
        let now = Self.now()
        let sample: Duration = .nanoseconds(rtt ?? 0)
        if success {
            nodes[index].latency.observe(sample, now: now)
        } else {
            nodes[index].latency.penalize(Self.failurePenalty, now: now)
        }
        if let error { nodes[index].lastError = error }
        let before = nodes[index].breaker.state.gaugeValue
        let transition = nodes[index].breaker.record(success: success, now: now)
        if transition == .closed { nodes[index].latency.reset(to: sample, now: now) }
        report(transition, node: index, from: before)
    }

    private func report(_ transition: CircuitBreaker.Transition?, node index: Int, from before: Int) {
        guard let transition else { return }
        health.cells[index].circuitMoved(from: before, to: nodes[index].breaker.state.gaugeValue)
        logger.notice("circuit \(transition)", metadata: [
            "network": "\(network)", "upstream": "\(nodes[index].connections.node.name)",
            "last_error": "\(nodes[index].lastError ?? "-")",
        ])
    }

    private func refreshViews(now: Int64) {
        for index in nodes.indices {
            let cell = health.cells[index]
            views[index].healthy = cell.isHealthy
            views[index].chainMatches = cell.chainMatches
            views[index].head = cell.head
            views[index].circuitAdmits = nodes[index].breaker.wouldAdmit(now: now)
            views[index].inFlight = nodes[index].inFlight
            // Latency only matters when there is a choice to make.
            if nodes.count > 1 { views[index].latency = nodes[index].latency.current(now: now) }
        }
    }

    /// This loop's view of each node, for `/status`.
    public func snapshot() -> [NodeSnapshot] {
        nodes.map { node in
            NodeSnapshot(
                upstream: node.connections.node.name, circuit: node.breaker.state.name, latencyMillis: node.latency.cost / 1e6,
                inFlight: node.inFlight, lastError: node.lastError)
        }
    }

    public func probe() -> EventLoopFuture<Bool> {
        func tryNode(_ index: Int) -> EventLoopFuture<Bool> {
            guard index < nodes.count else { return eventLoop.makeSucceededFuture(false) }
            return nodes[index].connections.probe().flatMap { $0 ? self.eventLoop.makeSucceededFuture(true) : tryNode(index + 1) }
        }
        return tryNode(0)
    }

    public func close() {
        for node in nodes { node.connections.close() }
    }

    static func now() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }
}

/// One node as one event loop sees it.
public struct NodeSnapshot: Sendable, Equatable {
    public var upstream: String
    public var circuit: String
    public var latencyMillis: Double
    public var inFlight: Int
    public var lastError: String?
}

extension CircuitBreaker.State {
    public var name: String {
        switch self {
        case .closed: "closed"
        case .open: "open"
        case .halfOpen: "half-open"
        }
    }
}
