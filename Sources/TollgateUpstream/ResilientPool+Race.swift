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
        var nodes: Set<Int>
        var handles: [NodeConnections.Handle] = []
        var timer: Scheduled<Void>?

        init(first: Int) { nodes = [first] }

        func finish() {
            finished = true
            timer?.cancel()
            for handle in handles { handle.cancel() }
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
