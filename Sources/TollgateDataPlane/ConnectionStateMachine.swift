/// What a client connection does next, as a value: events in, decisions out.
///
/// HTTP/1.1 lets a client pipeline requests; replies must leave in order. So one request is
/// served at a time and the rest wait in a queue; past `maxQueued` waiting requests reads stop
/// until the queue is down to half (the client cannot make Tollgate buffer without bound). A
/// refused request closes the connection after its answer; shutdown (quiescing) lets the
/// requests already read finish, then closes. `GatewayHandler` holds the queued requests and
/// performs the decisions; the rules live here, tested without a channel
/// (`ConnectionStateMachineTests`), after AsyncHTTPClient's `HTTP1ConnectionStateMachine`.
struct ConnectionStateMachine {
    enum RequestAction: Equatable {
        /// Nothing is in flight: serve it now.
        case serve
        /// Queue it behind the one in flight.
        case queue
        /// Queue it, and read no more until the queue drains.
        case queueAndPauseReads
    }

    enum ReplyAction: Equatable {
        /// Keep the connection: serve the next queued request if `serveNext`, resume reads if
        /// `resumeReads`.
        case keepAlive(serveNext: Bool, resumeReads: Bool)
        /// Say `Connection: close` and close once this reply is written (the client asked, the
        /// request was refused, or shutdown waits and nothing else is queued); anything queued
        /// is dropped.
        case close
    }

    let maxQueued: Int
    private(set) var inFlight = false
    private(set) var queued = 0
    /// A request head has begun arriving and is not complete yet.
    private(set) var readingHead = false
    private(set) var quiescing = false
    private(set) var readsPaused = false
    /// The request in flight was refused by the parser: its answer closes the connection.
    private var servingRefusal = false
    /// The input is no longer parsed (after a refusal).
    private(set) var stopped = false
    /// The last queued request is a refusal.
    private var refusalQueued = false

    init(maxQueued: Int) { self.maxQueued = maxQueued }

    /// Bytes of a head that is not complete yet arrived (starts the header deadline).
    mutating func headStarted() { readingHead = true }

    /// A whole request arrived, or the parser refused the bytes (`refused`: nothing after it is
    /// parsed, and its answer closes the connection).
    mutating func requestReceived(refused: Bool = false) -> RequestAction {
        readingHead = false
        if refused { stopped = true }
        guard inFlight else {
            start(refused: refused)
            return .serve
        }
        queued += 1
        if refused { refusalQueued = true }
        if queued >= maxQueued, !readsPaused {
            readsPaused = true
            return .queueAndPauseReads
        }
        return .queue
    }

    /// Whether a `100 Continue` may go out for a head just read: only when nothing is ahead of
    /// it (an interim answer must not overtake an earlier request's reply).
    var mayContinue: Bool { !inFlight && queued == 0 }

    /// The reply to the request in flight is ready. `clientKeepsAlive`: what the request asked for.
    mutating func replyReady(clientKeepsAlive: Bool) -> ReplyAction {
        inFlight = false
        guard clientKeepsAlive, !servingRefusal, !(quiescing && queued == 0) else {
            queued = 0
            refusalQueued = false
            return .close
        }
        guard queued > 0 else { return .keepAlive(serveNext: false, resumeReads: false) }
        queued -= 1
        // A refusal is always the last one queued: nothing after it is parsed.
        start(refused: queued == 0 && refusalQueued)
        if queued == 0 { refusalQueued = false }
        var resume = false
        if readsPaused, queued < maxQueued / 2 {
            readsPaused = false
            resume = true
        }
        return .keepAlive(serveNext: true, resumeReads: resume)
    }

    /// Shutdown asks the connection to close once idle: true to close now.
    mutating func quiesce() -> Bool {
        quiescing = true
        return isIdle
    }

    /// The idle timer fired: true to close (nothing in flight, no head arriving).
    func idleTimeout() -> Bool { !inFlight && !readingHead }

    /// The header deadline passed: true if a head is still arriving (answer 408 and close).
    mutating func headTimedOut() -> Bool {
        guard readingHead, !stopped else { return false }
        stopped = true
        return true
    }

    private var isIdle: Bool { !inFlight && !readingHead && queued == 0 }

    private mutating func start(refused: Bool) {
        inFlight = true
        servingRefusal = refused
    }
}
