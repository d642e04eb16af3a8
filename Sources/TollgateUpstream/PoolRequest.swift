import NIOCore

/// One request in a `ResilientPool`: its attempt state machine, its legs in flight, its hedge
/// timer, and whom to answer. The request's one allocation in the pool (each leg adds its
/// exchange); it is also the delegate its exchanges report to, so no closure is made per leg.
final class PoolRequest: UpstreamExchangeDelegate {
    struct LegSlot {
        var node: Int
        var start: Int64
        var exchange: NodeConnections.Exchange
        var span: (any UpstreamAttemptSpan)?
    }

    let pool: ResilientPool
    let request: UpstreamRequest
    var machine: AttemptStateMachine
    /// The legs of the current try (two when hedged), in fields: a request that is not hedged
    /// allocates no collection.
    struct Legs {
        var first: LegSlot?
        var second: LegSlot?

        subscript(leg: AttemptStateMachine.Leg) -> LegSlot? {
            get { leg == .first ? first : second }
            set { if leg == .first { first = newValue } else { second = newValue } }
        }
    }

    var legs = Legs()
    var timer: Scheduled<Void>?
    private var responder: (any UpstreamResponder)?

    init(pool: ResilientPool, request: consuming UpstreamRequest, machine: AttemptStateMachine, responder: any UpstreamResponder) {
        self.pool = pool
        self.request = request
        self.machine = machine
        self.responder = responder
    }

    func exchange(_ exchange: NodeConnections.Exchange, finished result: consuming Result<UpstreamResponse, NodeConnections.Failure>) {
        guard let leg = AttemptStateMachine.Leg(rawValue: exchange.tag) else { return }
        pool.legEnded(self, leg: leg, result: result, cancelled: exchange.cancelled)
    }

    func cancelTimer() {
        timer?.cancel()
        timer = nil
    }

    /// Answers once; whatever still runs (the other leg, the hedge timer) is cancelled.
    func finish(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) {
        cancelTimer()
        // Cancelling may report back at once (the connection closes on this loop): take the
        // exchanges out first.
        let first = legs.first?.exchange
        let second = legs.second?.exchange
        first?.cancel()
        second?.cancel()
        guard let responder else { return }
        self.responder = nil
        responder.upstreamAnswered(result)
    }
}
