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
        /// When this loop last sent the node a request (monotonic ns).
        var lastSent: Int64 = 0
    }

    /// An eligible node not tried for this long gets the next request: otherwise a node whose
    /// latency estimate is momentarily high never wins a draw, never gets a fresh sample, and
    /// stays shunned until its estimate decays (the cold-node problem of latency balancing).
    static let refreshAfter: Int64 = 2_000_000_000

    public let network: String
    let eventLoop: any EventLoop
    private let settings: UpstreamNetwork
    private let health: NodeHealthBoard
    private let logger: Logger
    private var nodes: [Node]
    private var views: [NodeView]
    private var budget: RetryBudget
    private var random: SplitMix64
    /// Recent successful latencies, for quantile hedge delays.
    private var recent = LatencyWindow()
    /// Hedges sent by this loop's pool.
    public private(set) var hedges = 0

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
        // comes back. Then any node not tried lately. Otherwise power of two choices.
        let probing = candidates.first { nodes[$0].breaker.state != .closed }
            ?? candidates.first { now - nodes[$0].lastSent > Self.refreshAfter }
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
        let timeout = min(remaining, deadlines.attempt)
        let race = Race(first: index)
        let settle: (LegOutcome) -> Void = { outcome in
            guard !race.finished else { return }
            race.pending -= 1
            switch outcome {
            case .good(var response):
                race.finish()
                response.attempts = number + race.legs - 1
                response.upstreamNanos = Self.now() - started
                response.hedged = race.legs > 1
                completion(.success(response))
            case .failed(let failure, let sentToNode, let answer):
                // While the other leg of a hedge runs, it may still win.
                guard race.pending == 0 else { return }
                race.finish()
                let retryable = request.retryable || !sentToNode  // writes: only if nothing reached the node
                guard retryable, self.canRetry(tried: tried.union(race.nodes), number: number + race.legs - 1, now: Self.now()) else {
                    if var answer {
                        answer.attempts = number + race.legs - 1
                        answer.upstreamNanos = Self.now() - started
                        completion(.success(answer))
                    } else {
                        completion(.failure(failure))
                    }
                    return
                }
                self.logger.debug("retrying on another node", metadata: ["request_id": "\(request.requestID)", "reason": "\(failure)"])
                self.attempt(
                    request, tried: tried.union(race.nodes), number: number + race.legs, started: started, deadlines: deadlines,
                    lastFailure: failure, completion: completion)
            }
        }
        race.firstHandle = runLeg(index, request, timeout: timeout, completion: settle)
        if number == 1, request.retryable, candidates.count > 1, let delay = hedgeDelay() {
            race.timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { self.hedge(request, race: race, tried: tried, started: started, deadlines: deadlines, settle: settle) }
        }
    }

    /// The second leg of a hedged read: the same request to another eligible node.
    private func hedge(
        _ request: UpstreamRequest, race: Race, tried: Set<Int>, started: Int64, deadlines: (request: Int64, attempt: Int64),
        settle: @escaping (LegOutcome) -> Void
    ) {
        guard !race.finished else { return }
        let now = Self.now()
        let remaining = deadlines.request - (now - started)
        guard remaining > 0 else { return }
        refreshViews(now: now)
        let others = NodeSelection.eligible(views, methods: request.methods, maxLag: settings.maxBlockLag, excluding: tried.union(race.nodes))
        guard let second = NodeSelection.choose(others, nodes: views, using: &random) else { return }
        let before = nodes[second].breaker.state.gaugeValue
        let (admitted, transition) = nodes[second].breaker.admit(now: now)
        report(transition, node: second, from: before)
        guard admitted else { return }
        race.pending += 1
        race.legs += 1
        race.second = second
        hedges += 1
        race.secondHandle = runLeg(second, request, timeout: min(remaining, deadlines.attempt), completion: settle)
    }

    /// One try on one node: counts in-flight, classifies the answer, feeds the breaker and the
    /// latency estimate. A cancelled leg (a hedge's loser) counts for nothing.
    private func runLeg(_ index: Int, _ request: UpstreamRequest, timeout: Int64, completion: @escaping (LegOutcome) -> Void) -> NodeConnections.Handle {
        let start = Self.now()
        let name = nodes[index].connections.node.name
        nodes[index].inFlight += 1
        nodes[index].lastSent = start
        let handle = NodeConnections.Handle()
        var request = request
        let span = request.observer?.attemptStarted(node: name)
        if let span { request.traceparent = span.traceparent }
        nodes[index].connections.exchange(request, timeout: .nanoseconds(timeout), handle: handle) { result in
            handle.complete()
            let finished = Self.now()
            self.nodes[index].inFlight -= 1
            if handle.cancelled {
                self.nodes[index].breaker.release()
                span?.finished(outcome: "cancelled")
                return
            }
            switch result {
            case .success(let response):
                switch UpstreamAnswerClassifier.classify(status: Int(response.status.code), body: response.body) {
                case .good:
                    self.finish(index, success: true, rtt: finished - start, error: nil)
                    span?.finished(outcome: "ok")
                    completion(.good(response))
                case .nodeFailure(let reason):
                    self.finish(index, success: false, rtt: finished - start, error: reason)
                    span?.finished(outcome: "node_error")
                    completion(.failed(.badGateway(network: self.network, detail: "node \(name): \(reason)"), sentToNode: true,
                        answer: response.status.code < 500 ? response : nil))
                }
            case .failure(.connect):
                self.finish(index, success: false, rtt: nil, error: "connect failed")
                span?.finished(outcome: "connect_failed")
                completion(.failed(.unavailable(network: self.network), sentToNode: false, answer: nil))
            case .failure(.timeout):
                self.finish(index, success: false, rtt: finished - start, error: "timeout")
                span?.finished(outcome: "timeout")
                completion(.failed(.timeout(network: self.network, node: name), sentToNode: true, answer: nil))
            case .failure(.broken(let detail)):
                self.finish(index, success: false, rtt: nil, error: detail)
                span?.finished(outcome: "broken")
                completion(.failed(.badGateway(network: self.network, detail: "node \(name): \(detail)"), sentToNode: true, answer: nil))
            }
        }
        return handle
    }

    /// When to send a hedge: the configured delay, or the chosen quantile of recent latencies.
    private func hedgeDelay() -> Int64? {
        switch settings.hedge {
        case nil: return nil
        case .fixed(let delay): return delay.nanoseconds
        case .quantile(let quantile, let minimum): return max(recent.quantile(quantile) ?? minimum.nanoseconds, minimum.nanoseconds)
        }
    }

    private func canRetry(tried: Set<Int>, number: Int, now: Int64) -> Bool {
        guard number < settings.maxAttempts, tried.count < nodes.count else { return false }
        return budget.tryRetry(now: now)
    }

    /// A failure counts as a slow answer: a node that fails fast must not look fast.
    static let failurePenalty: Duration = .milliseconds(250)

    private func finish(_ index: Int, success: Bool, rtt: Int64?, error: String?) {
        let now = Self.now()
        let sample: Duration = .nanoseconds(rtt ?? 0)
        if success {
            nodes[index].latency.observe(sample, now: now)
            recent.add(rtt ?? 0)
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

    public func close() {
        for node in nodes { node.connections.close() }
    }

    static func now() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }
}

