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
    /// `settings.timeout` and `settings.attemptTimeout` in nanoseconds, converted once: a
    /// `Duration`'s nanoseconds are a 128-bit division, on every request.
    private let requestTimeout: Int64
    private let attemptTimeout: Int64
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

    /// After `close()`: requests still in flight finish, but no longer move the board's circuit gauges.
    private var retired = false
    /// Answered requests, kept to carry new ones (`PoolRequest.reuse`): a pool under steady
    /// traffic allocates nothing per request. Last in, first out: the one answered last is the
    /// likeliest to be free.
    private var spares: [PoolRequest] = []
    static let maxSpares = 64

    /// - Parameter previous: the pool this one replaces on the same loop (a config reload): a
    ///   node it had under the same name keeps its breaker state, latency estimate and last
    ///   error, so a reload neither sends traffic back to a node whose circuit is open nor
    ///   forgets which node is slow. Connections are new: the node's settings may have changed.
    public init(
        network: UpstreamNetwork, eventLoop: any EventLoop, tls: NIOSSLContext?, health: NodeHealthBoard, logger: Logger,
        previous: ResilientPool? = nil
    ) {
        self.network = network.name
        self.settings = network
        self.requestTimeout = network.timeout.nanoseconds
        self.attemptTimeout = network.attemptTimeout.nanoseconds
        self.eventLoop = eventLoop
        self.health = health
        self.logger = logger
        var carried = previous?.nodes ?? []
        self.nodes = network.nodes.enumerated().map { index, upstream in
            var node = Node(
                connections: NodeConnections(node: upstream, eventLoop: eventLoop, tls: tls, settings: network),
                breaker: CircuitBreaker(settings: network.circuitBreaker))
            if let match = carried.firstIndex(where: { $0.connections.node.name == upstream.name }) {
                let old = carried.remove(at: match)
                // A breaker is kept only under unchanged settings (its window is sized by them).
                if old.breaker.settings == network.circuitBreaker { node.breaker = old.breaker }
                node.latency = old.latency
                node.lastError = old.lastError
                node.lastSent = old.lastSent
                health.cells[index].circuitMoved(from: 0, to: node.breaker.state.gaugeValue)
            }
            return node
        }
        self.views = network.nodes.map { NodeView(weight: $0.weight, role: $0.role, maxInFlight: $0.maxInFlight, methods: $0.methods) }
        self.budget = RetryBudget(ratio: network.retryRatio)
        var seed = SystemRandomNumberGenerator()
        self.random = SplitMix64(seed: seed.next())
    }

    public func isFresh(node name: String, checks: Int) -> Bool {
        guard let index = settings.nodes.firstIndex(where: { $0.name == name }) else { return true }
        let cell = health.cells[index]
        return !cell.isCordoned && cell.freshStreak >= checks
    }

    public func execute(_ request: consuming UpstreamRequest, responder: any UpstreamResponder) {
        eventLoop.assertInEventLoop()
        let now = Self.now()
        budget.recordRequest(now: now)
        let (requestTimeout, attemptTimeout) = deadlines(for: request.methods)
        let machine = AttemptStateMachine(
            settings: .init(
                network: network, retryable: request.retryable, maxAttempts: settings.maxAttempts, nodeCount: nodes.count,
                requestTimeout: requestTimeout, attemptTimeout: attemptTimeout, hedgeDelay: hedgeDelay()),
            now: now)
        let run: PoolRequest
        if let spare = takeSpare() {
            spare.reuse(request: consume request, machine: machine, responder: responder)
            run = spare
        } else {
            run = PoolRequest(pool: self, request: consume request, machine: machine, responder: responder)
        }
        perform(run.machine.start(now: now), for: run, now: now)
    }

    /// A recycled request that nothing else holds any more; one that something still holds (a
    /// hedge's cancelled leg not yet reported back) is left to be freed by its last holder.
    private func takeSpare() -> PoolRequest? {
        while var spare = spares.popLast() {
            if isKnownUniquelyReferenced(&spare), spare.isFree { return spare }
        }
        return nil
    }

    /// An answered request goes back to the spares, without what it held for the client.
    private func recycle(_ run: PoolRequest) {
        run.release()
        if !retired, spares.count < Self.maxSpares { spares.append(run) }
    }

    /// (request, per-try) timeouts in nanoseconds: a method's own timeout replaces both.
    private func deadlines(for methods: UpstreamMethods) -> (request: Int64, attempt: Int64) {
        guard !settings.methodTimeouts.isEmpty else { return (requestTimeout, attemptTimeout) }
        var longest: Duration?
        for method in methods {
            for (matcher, timeout) in settings.methodTimeouts where matcher.matches(method) {
                longest = max(longest ?? timeout, timeout)
                break
            }
        }
        guard let longest else { return (requestTimeout, attemptTimeout) }
        return (longest.nanoseconds, longest.nanoseconds)
    }

    /// Carries out what the request's state machine asks, feeding back each answer until it
    /// waits on the network (a leg, the hedge timer) or is done. `now` is the time of the event
    /// that led here: the steps between take microseconds, and one clock read serves them all.
    func perform(_ first: consuming AttemptStateMachine.Action, for run: PoolRequest, now: Int64) {
        var action = first
        while true {
            switch consume action {
            case .none:
                return
            case .choose(let excluding):
                let (node, candidates) = choose(excluding: excluding, methods: run.request.methods, atHead: run.request.atHead, now: now)
                action = run.machine.chose(node, othersEligible: candidates > 1, now: now)
            case .chooseHedge(let excluding):
                let (node, _) = choose(excluding: excluding, methods: run.request.methods, atHead: run.request.atHead, now: now, hedge: true)
                if node != nil { hedges += 1 }
                action = run.machine.choseHedge(node, now: now)
            case .send(let node, let leg, let timeout, let hedgeAfter):
                send(run, leg: leg, to: node, timeout: timeout, now: now)
                if let hedgeAfter {
                    run.timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(hedgeAfter)) {
                        let now = Self.now()
                        self.perform(run.machine.hedgeTimerFired(now: now), for: run, now: now)
                    }
                }
                return
            case .askRetryBudget:
                let granted = budget.tryRetry(now: now)
                if granted { logger.debug("retrying on another node", metadata: ["request_id": "\(run.request.requestID)"]) }
                run.cancelTimer()
                action = run.machine.retryBudget(granted: granted, now: now)
            case .finish(let result):
                run.finish(consume result)
                recycle(run)
                return
            }
        }
    }

    /// An eligible node, admitted by its breaker: the one whose circuit waits for a probe first
    /// (that is how a recovered node comes back), then any not tried lately, otherwise power of
    /// two choices. A node whose breaker refuses is passed over. Also returns how many nodes
    /// were eligible, since a hedge needs a second one.
    private func choose(excluding: NodeSet, methods: UpstreamMethods, atHead: Bool = false, now: Int64, hedge: Bool = false) -> (Int?, Int) {
        refreshViews(now: now)
        var excluded = excluding
        var eligible = 0
        while true {
            let candidates = NodeSelection.eligible(views, methods: methods, maxLag: settings.maxBlockLag, excluding: excluded, atHead: atHead)
            if eligible == 0 { eligible = candidates.count }
            let probing = hedge ? nil : candidates.first { nodes[$0].breaker.state != .closed }
                ?? candidates.first { now - nodes[$0].lastSent > Self.refreshAfter }
            guard let index = probing ?? NodeSelection.choose(candidates, nodes: views, using: &random) else { return (nil, eligible) }
            let before = nodes[index].breaker.state.gaugeValue
            let (admitted, transition) = nodes[index].breaker.admit(now: now)
            report(transition, node: index, from: before)
            if admitted { return (index, eligible) }
            excluded.insert(index)
        }
    }

    /// One leg on one node: counts in-flight and starts the exchange; `legEnded` hears back.
    private func send(_ run: PoolRequest, leg: AttemptStateMachine.Leg, to index: Int, timeout: Int64, now start: Int64) {
        let name = nodes[index].connections.node.name
        nodes[index].inFlight += 1
        nodes[index].lastSent = start
        let exchange = run.exchange(for: leg, timeout: .nanoseconds(timeout))
        let span = exchange.request.observer?.attemptStarted(node: name)
        if let span { exchange.request.traceparent = span.traceparent }
        run.legs[leg] = PoolRequest.LegSlot(node: index, start: start, exchange: exchange, span: span)
        nodes[index].connections.start(exchange, now: start)
    }

    /// Classifies what a leg came to, feeds the breaker and the latency estimate, and tells the
    /// state machine. A cancelled leg (a hedge's loser) counts for nothing.
    func legEnded(_ run: PoolRequest, leg: AttemptStateMachine.Leg, result: consuming Result<UpstreamResponse, NodeConnections.Failure>, cancelled: Bool) {
        guard let slot = run.legs[leg] else { return }
        run.legs[leg] = nil
        let index = slot.node
        let span = slot.span
        let finished = Self.now()
        nodes[index].inFlight -= 1
        if cancelled {
            nodes[index].breaker.release()
            span?.finished(outcome: "cancelled")
            return
        }
        let name = nodes[index].connections.node.name
        let outcome: AttemptStateMachine.LegResult
        switch consume result {
        case .success(var response):
            switch UpstreamAnswerClassifier.classify(status: Int(response.status.code), body: response.body) {
            case .good:
                finish(index, now: finished, success: true, rtt: finished - slot.start, error: nil)
                span?.finished(outcome: "ok")
                response.nodeHead = health.cells[index].head
                outcome = .good(consume response)
            case .nodeFailure(let reason):
                finish(index, now: finished, success: false, rtt: finished - slot.start, error: reason)
                span?.finished(outcome: "node_error")
                outcome = .failed(.badGateway(network: network, detail: "node \(name): \(reason)"), sentToNode: true,
                    answer: response.status.code < 500 ? response : nil)
            }
        case .failure(.connect):
            finish(index, now: finished, success: false, rtt: nil, error: "connect failed")
            span?.finished(outcome: "connect_failed")
            outcome = .failed(.unavailable(network: network), sentToNode: false, answer: nil)
        case .failure(.timeout):
            finish(index, now: finished, success: false, rtt: finished - slot.start, error: "timeout")
            span?.finished(outcome: "timeout")
            outcome = .failed(.timeout(network: network, node: name), sentToNode: true, answer: nil)
        case .failure(.broken(let detail)):
            finish(index, now: finished, success: false, rtt: nil, error: detail)
            span?.finished(outcome: "broken")
            outcome = .failed(.badGateway(network: network, detail: "node \(name): \(detail)"), sentToNode: true, answer: nil)
        }
        perform(run.machine.legFinished(leg, consume outcome, now: finished), for: run, now: finished)
    }

    /// When to send a hedge: the configured delay, or the chosen quantile of recent latencies.
    private func hedgeDelay() -> Int64? {
        switch settings.hedge {
        case nil: return nil
        case .fixed(let delay): return delay.nanoseconds
        case .quantile(let quantile, let minimum): return max(recent.quantile(quantile) ?? minimum.nanoseconds, minimum.nanoseconds)
        }
    }

    /// A failure counts as a slow answer: a node that fails fast must not look fast.
    static let failurePenalty: Duration = .milliseconds(250)

    private func finish(_ index: Int, now: Int64, success: Bool, rtt: Int64?, error: String?) {
        let sample: Duration = .nanoseconds(rtt ?? 0)
        if success {
            nodes[index].latency.observe(sample, now: now)
            // Only a quantile hedge reads the window.
            if case .quantile = settings.hedge { recent.add(rtt ?? 0) }
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
        if !retired { health.cells[index].circuitMoved(from: before, to: nodes[index].breaker.state.gaugeValue) }
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
            views[index].cordoned = cell.isCordoned
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

    /// Closes idle connections and takes this pool's circuits off the board's gauges (a pool
    /// that replaces it counts its own). Shutdown, or a config reload that replaced the pool.
    public func close() {
        eventLoop.assertInEventLoop()
        for node in nodes { node.connections.close() }
        // Each spare holds this pool: let them go with it.
        spares = []
        guard !retired else { return }
        retired = true
        for index in nodes.indices { health.cells[index].circuitMoved(from: nodes[index].breaker.state.gaugeValue, to: 0) }
    }

    public var chain: ChainTracker? { health.chain }

    static func now() -> Int64 { MonotonicClock.now() }
}

