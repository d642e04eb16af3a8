import NIOCore

/// One request in a `ResilientPool`: its attempt state machine, its legs in flight, its hedge
/// timer, and whom to answer. It is also the delegate its exchanges report to, so no closure is
/// made per leg.
///
/// The request itself lives in `primary`, the exchange of the first leg: that leg sends it as it
/// is, and only a retry or a hedge copies it into an exchange of its own. Once answered, the
/// object (with `primary`) goes back to its pool to carry a later request (`recycle`), so a pool
/// under steady traffic allocates nothing per request.
final class PoolRequest: UpstreamExchangeDelegate {
    struct LegSlot {
        var node: Int
        var start: Int64
        var exchange: NodeConnections.Exchange
        var span: (any UpstreamAttemptSpan)?
    }

    let pool: ResilientPool
    /// The first leg's exchange, which holds the request.
    private(set) var primary: NodeConnections.Exchange
    /// Whether `primary` went out already (a later leg then gets an exchange of its own).
    private var primarySent = false
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
        self.primary = NodeConnections.Exchange(request: request)
        self.machine = machine
        self.responder = responder
    }

    /// The request, read in place.
    var request: UpstreamRequest {
        _read { yield primary.request }
    }

    /// This object for the next request, once `isFree`.
    func reuse(request: consuming UpstreamRequest, machine: AttemptStateMachine, responder: any UpstreamResponder) {
        primary.request = request
        primarySent = false
        self.machine = machine
        self.responder = responder
    }

    /// Nothing else holds the first exchange, every leg reported back and no timer is left (the
    /// pool checks that nothing else holds this object). Checked when a recycled request is
    /// taken, not when it is put back: a cancelled leg may still report back after the answer.
    var isFree: Bool {
        legs.first == nil && legs.second == nil && timer == nil && isKnownUniquelyReferenced(&primary)
    }

    /// Drops what the answered request held that other objects may want back: the body (a
    /// slice of the client's read buffer) and the trace.
    func release() {
        primary.request.body = ByteBuffer()
        primary.request.clearTracing()
    }

    /// The exchange for a leg: `primary` for the first one sent, else a new one with a copy of
    /// the request (a retry, a hedge).
    func exchange(for leg: AttemptStateMachine.Leg, timeout: TimeAmount) -> NodeConnections.Exchange {
        guard primarySent else {
            primarySent = true
            primary.prepare(timeout: timeout, tag: leg.rawValue, delegate: self)
            return primary
        }
        return NodeConnections.Exchange(request: primary.request, timeout: timeout, tag: leg.rawValue, delegate: self)
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
        responder.upstreamAnswered(consume result)
    }
}
