/// The retries and hedges of one request to a pool, as a value: events in, actions out.
///
/// It decides when to try another node, when to send a hedge, when to give up and with what
/// answer; it never touches a socket, a timer, a breaker or a clock. `ResilientPool` performs
/// its actions (choosing a node, sending a leg, arming the hedge timer, asking the retry
/// budget) and feeds back what came of them, with the time. So the rules are tested as
/// transcripts of events and actions (`AttemptStateMachineTests`), the way AsyncHTTPClient
/// tests its `HTTP1ConnectionStateMachine`.
///
/// A *try* is one or two *legs* sent at about the same time (the second a hedge, sent when
/// the first is slow); the first good answer of a try wins and the other leg is cancelled. A
/// try whose legs all failed is followed by another on a node not tried yet, while the
/// request is retryable, attempts and nodes are left, the deadline has not passed and the
/// pool's retry budget allows it.
struct AttemptStateMachine {
    struct Settings {
        var network: String
        /// Reads: node-side failures may be retried and hedged. Writes only retry when nothing
        /// reached the node.
        var retryable: Bool
        var maxAttempts: Int
        var nodeCount: Int
        /// The whole request's deadline and each leg's, in nanoseconds.
        var requestTimeout: Int64
        var attemptTimeout: Int64
        /// When the first leg of the first try is hedged (nil: never).
        var hedgeDelay: Int64?
    }

    enum Leg: Int {
        case first = 0
        case second = 1
    }

    /// What one leg came to, as the pool classified it.
    enum LegResult {
        case good(UpstreamResponse)
        /// A node-side failure. `answer` is the node's own non-5xx reply, which the client gets
        /// if no other node answers instead.
        case failed(UpstreamFailure, sentToNode: Bool, answer: UpstreamResponse?)
    }

    enum Action {
        /// Choose a node outside `excluding` and admit it through its breaker; report it with
        /// `chose(_:othersEligible:now:)`.
        case choose(excluding: NodeSet)
        /// The same for the hedge leg; report it with `choseHedge(_:now:)`.
        case chooseHedge(excluding: NodeSet)
        /// Send a leg to `node` with this timeout; with `hedgeAfter`, arm the hedge timer too.
        case send(node: Int, leg: Leg, timeout: Int64, hedgeAfter: Int64?)
        /// Ask the pool's retry budget; report with `retryBudget(granted:now:)`.
        case askRetryBudget
        /// Done: cancel what still runs (the other leg, the hedge timer) and answer with this.
        case finish(Result<UpstreamResponse, UpstreamFailure>)
        case none
    }

    private enum State {
        case idle
        case choosing
        case running
        /// The failure and the node's answer it waits with are in `awaitingBudget`: a state
        /// that carried them made every check of the state a copy of some 160 bytes
        /// (`memcpy` calls counted by uprobe, docs/benchmarks.md, eleventh session).
        case awaitingBudget
        case finished
    }

    let settings: Settings
    private let started: Int64
    private var state = State.idle
    /// While `.awaitingBudget`: what failed, and the node's own answer if it gave one.
    private var awaitingBudget: (failure: UpstreamFailure, answer: UpstreamResponse?)?
    /// The attempt number of the current try's first leg (1-based; a hedge leg counts as one).
    private var number = 1
    private var legs = 0
    private var pending = 0
    private var hedgeArmed = false
    /// Every node a leg went to, this try included.
    private(set) var tried = NodeSet()
    private var lastFailure: UpstreamFailure?

    init(settings: Settings, now: Int64) {
        self.settings = settings
        self.started = now
    }

    var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    /// Attempts made so far (legs sent).
    var attempts: Int { number + legs - 1 }

    mutating func start(now: Int64) -> Action {
        guard case .idle = state else { return .none }
        return beginTry(now: now)
    }

    /// The node for the next try, nil when none is left. `othersEligible`: another node could
    /// take a hedge.
    mutating func chose(_ node: Int?, othersEligible: Bool, now: Int64) -> Action {
        guard case .choosing = state else { return .none }
        guard let node else { return finish(.failure(lastFailure ?? .unavailable(network: settings.network))) }
        tried.insert(node)
        legs = 1
        pending = 1
        state = .running
        let hedge = number == 1 && settings.retryable && othersEligible ? settings.hedgeDelay : nil
        hedgeArmed = hedge != nil
        return .send(node: node, leg: .first, timeout: legTimeout(now: now), hedgeAfter: hedge)
    }

    /// The hedge timer fired.
    mutating func hedgeTimerFired(now: Int64) -> Action {
        guard case .running = state, hedgeArmed, legs == 1 else { return .none }
        hedgeArmed = false
        guard remaining(now: now) > 0 else { return .none }
        return .chooseHedge(excluding: tried)
    }

    /// The node for the hedge leg, nil when none other is eligible (the first leg runs on alone).
    mutating func choseHedge(_ node: Int?, now: Int64) -> Action {
        guard case .running = state, legs == 1, let node, !tried.contains(node) else { return .none }
        tried.insert(node)
        legs = 2
        pending += 1
        return .send(node: node, leg: .second, timeout: legTimeout(now: now), hedgeAfter: nil)
    }

    /// A leg ended. Results of legs that lost a race (or came after the end) change nothing.
    mutating func legFinished(_ leg: Leg, _ result: consuming LegResult, now: Int64) -> Action {
        guard case .running = state, leg.rawValue < legs, pending > 0 else { return .none }
        pending -= 1
        switch consume result {
        case .good(var response):
            response.attempts = attempts
            response.upstreamNanos = now - started
            response.hedged = legs > 1
            return finish(.success(consume response))
        case .failed(let failure, let sentToNode, let answer):
            // While the other leg of a hedge runs, it may still win.
            guard pending == 0 else { return .none }
            hedgeArmed = false
            let mayResend = settings.retryable || !sentToNode
            guard mayResend, attempts < settings.maxAttempts, tried.count < settings.nodeCount else {
                return giveUp(failure, answer: answer, now: now)
            }
            state = .awaitingBudget
            awaitingBudget = (failure, answer)
            return .askRetryBudget
        }
    }

    mutating func retryBudget(granted: Bool, now: Int64) -> Action {
        guard case .awaitingBudget = state, let (failure, answer) = awaitingBudget.take() else { return .none }
        guard granted else { return giveUp(failure, answer: answer, now: now) }
        number += legs
        legs = 0
        lastFailure = failure
        return beginTry(now: now)
    }

    private mutating func beginTry(now: Int64) -> Action {
        guard remaining(now: now) > 0 else {
            return finish(.failure(lastFailure ?? .timeout(network: settings.network, node: "none")))
        }
        state = .choosing
        return .choose(excluding: tried)
    }

    /// No other node will answer: the node's own non-5xx reply if there is one, else the failure.
    private mutating func giveUp(_ failure: UpstreamFailure, answer: UpstreamResponse?, now: Int64) -> Action {
        guard var answer else { return finish(.failure(failure)) }
        answer.attempts = attempts
        answer.upstreamNanos = now - started
        return finish(.success(answer))
    }

    private mutating func finish(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) -> Action {
        state = .finished
        hedgeArmed = false
        return .finish(result)
    }

    private func remaining(now: Int64) -> Int64 { settings.requestTimeout - (now - started) }

    private func legTimeout(now: Int64) -> Int64 { max(1, min(remaining(now: now), settings.attemptTimeout)) }
}
