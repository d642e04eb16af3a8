import NIOCore
import TollgateCore

extension ResilientPool {
    /// What one try on one node came to.
    enum LegOutcome {
        case good(UpstreamResponse)
        /// A node-side failure. `answer` is the node's own non-5xx reply, which the client gets
        /// if no other node can answer instead.
        case failed(UpstreamFailure, sentToNode: Bool, answer: UpstreamResponse?)
    }

    /// The legs of one try (two when hedged): the first good answer wins, the rest are cancelled.
    final class Race {
        var finished = false
        var pending = 1
        var legs = 1
        /// The nodes tried, and the legs' handles: at most two each, kept in fields rather than
        /// collections so that a request that is not hedged allocates none.
        let first: Int
        var second: Int?
        var firstHandle: NodeConnections.Handle?
        var secondHandle: NodeConnections.Handle?
        var timer: Scheduled<Void>?

        init(first: Int) { self.first = first }

        /// The nodes this try used (built only on the retry and hedge paths).
        var nodes: Set<Int> { second.map { [first, $0] } ?? [first] }

        func finish() {
            finished = true
            timer?.cancel()
            firstHandle?.cancel()
            secondHandle?.cancel()
        }
    }
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
