import TollgateCore

/// The admin API's read-only views of the config (plans, networks) and the one live control
/// over nodes it offers (cordon), behind one protocol the app implements over its config and
/// health boards.
public protocol FleetAdministration: Sendable {
    func plans() -> [Plan]
    func networks() -> [NetworkStatus]
    /// The node after the change; nil when the network has no node of that name. Shared with
    /// every replica where they share a Redis.
    func cordon(network: String, node: String, _ cordoned: Bool) async -> NodeStatus?
}

public struct NetworkStatus: Sendable {
    public var name: String
    public var chainID: Int64
    public var head: UInt64?
    public var finalized: UInt64?
    public var nodes: [NodeStatus]

    public init(name: String, chainID: Int64, head: UInt64?, finalized: UInt64?, nodes: [NodeStatus]) {
        self.name = name
        self.chainID = chainID
        self.head = head
        self.finalized = finalized
        self.nodes = nodes
    }
}

public struct NodeStatus: Sendable {
    public var name: String
    public var fallback: Bool
    public var weight: Double
    public var healthy: Bool
    public var cordoned: Bool
    public var head: UInt64?
    public var lag: UInt64?
    /// 0 closed, 1 half-open, 2 open (the worst across event loops).
    public var circuit: Int
    public var lastError: String?

    public init(
        name: String, fallback: Bool, weight: Double, healthy: Bool, cordoned: Bool, head: UInt64?, lag: UInt64?, circuit: Int, lastError: String?
    ) {
        self.name = name
        self.fallback = fallback
        self.weight = weight
        self.healthy = healthy
        self.cordoned = cordoned
        self.head = head
        self.lag = lag
        self.circuit = circuit
        self.lastError = lastError
    }
}
