import TollgateCore

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
