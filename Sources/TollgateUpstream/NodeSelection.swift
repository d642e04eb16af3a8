import TollgateCore

/// What the pool knows about one node when it chooses: plain values, no I/O.
public struct NodeView: Sendable, Equatable {
    public enum Role: String, Sendable { case primary, fallback }

    public var weight: Double
    public var role: Role
    /// The last active health check passed.
    public var healthy: Bool
    /// `eth_chainId` matched the network's chain id.
    public var chainMatches: Bool
    /// The node's head block from its last health check.
    public var head: UInt64?
    /// Whether its circuit would admit a request now.
    public var circuitAdmits: Bool
    public var inFlight: Int
    public var maxInFlight: Int?
    /// Peak-EWMA latency, nanoseconds.
    public var latency: Double
    public var methods: MethodPolicy
    /// Taken out of rotation by an operator: never chosen, whatever its health.
    public var cordoned = false

    public init(
        weight: Double = 1, role: Role = .primary, healthy: Bool = true, chainMatches: Bool = true, head: UInt64? = nil,
        circuitAdmits: Bool = true, inFlight: Int = 0, maxInFlight: Int? = nil, latency: Double = 1_000_000,
        methods: MethodPolicy = MethodPolicy()
    ) {
        self.weight = weight
        self.role = role
        self.healthy = healthy
        self.chainMatches = chainMatches
        self.head = head
        self.circuitAdmits = circuitAdmits
        self.inFlight = inFlight
        self.maxInFlight = maxInFlight
        self.latency = latency
        self.methods = methods
    }
}

/// How a pool picks a node: pure functions over `NodeView`s, tested without sockets.
public enum NodeSelection {
    /// The pool's head: the highest head among healthy nodes on the right chain.
    public static func poolHead(_ nodes: [NodeView]) -> UInt64? {
        var head: UInt64?
        for index in nodes.indices where nodes[index].healthy && nodes[index].chainMatches {
            if let nodeHead = nodes[index].head, nodeHead > (head ?? 0) { head = nodeHead }
        }
        return head
    }

    /// Nodes that may take `method` now: right chain, healthy, at most `maxLag` blocks behind the
    /// pool's head, circuit admitting, under their in-flight cap, method allowed. Fallback nodes
    /// only when no primary qualifies.
    public static func eligible(_ nodes: [NodeView], method: String?, maxLag: UInt64, excluding: NodeSet = []) -> NodeSet {
        eligible(nodes, methods: method.map { UpstreamMethods.one($0) } ?? [], maxLag: maxLag, excluding: excluding)
    }

    /// As above, for a batch: the node must take every method in it. With `atHead` (a read
    /// about the latest block), only nodes at the pool's head while one of them qualifies: a
    /// node a few blocks behind is within `maxLag` for everything else, but its `latest` is
    /// an older block than the one `eth_blockNumber` already told the client about.
    public static func eligible(
        _ nodes: [NodeView], methods: UpstreamMethods, maxLag: UInt64, excluding: NodeSet = [], atHead: Bool = false
    ) -> NodeSet {
        let head = poolHead(nodes)
        // Fields read in place: a copy of the view would retain and release its method policy's
        // five arrays, for every node on every request.
        func ok(_ index: Int) -> Bool {
            guard !excluding.contains(index), !nodes[index].cordoned, nodes[index].chainMatches, nodes[index].healthy,
                nodes[index].circuitAdmits
            else { return false }
            if let cap = nodes[index].maxInFlight, nodes[index].inFlight >= cap { return false }
            if !nodes[index].methods.isOpen {
                for method in methods where !nodes[index].methods.permits(method) { return false }
            }
            if let head, let nodeHead = nodes[index].head, nodeHead + maxLag < head { return false }
            return true
        }
        var primaries = NodeSet()
        var fallbacks = NodeSet()
        for index in nodes.indices where ok(index) {
            if nodes[index].role == .primary { primaries.insert(index) } else { fallbacks.insert(index) }
        }
        let chosen = primaries.isEmpty ? fallbacks : primaries
        guard atHead, let head else { return chosen }
        var current = NodeSet()
        for index in chosen where (nodes[index].head ?? 0) >= head { current.insert(index) }
        return current.isEmpty ? chosen : current
    }

    /// Lower is better: latency × (in-flight + 1) ÷ weight.
    public static func score(_ node: NodeView) -> Double {
        score(latency: node.latency, inFlight: node.inFlight, weight: node.weight)
    }

    /// The same, read in place: a copy of the view would retain its method policy.
    static func score(_ nodes: [NodeView], _ index: Int) -> Double {
        score(latency: nodes[index].latency, inFlight: nodes[index].inFlight, weight: nodes[index].weight)
    }

    private static func score(latency: Double, inFlight: Int, weight: Double) -> Double {
        latency * Double(inFlight + 1) / max(weight, 0.0001)
    }

    /// Power of two choices: two distinct candidates at random, the one with the lower score.
    /// Cheaper than ranking every node and, unlike always taking the best, it does not herd
    /// every loop onto one node between latency updates.
    public static func choose(
        _ candidates: NodeSet, nodes: [NodeView], using generator: inout some RandomNumberGenerator
    ) -> Int? {
        let count = candidates.count
        switch count {
        case 0: return nil
        case 1: return candidates.member(0)
        default:
            let first = Int.random(in: 0..<count, using: &generator)
            var second = Int.random(in: 0..<(count - 1), using: &generator)
            if second >= first { second += 1 }
            let a = candidates.member(first)!
            let b = candidates.member(second)!
            return score(nodes, a) <= score(nodes, b) ? a : b
        }
    }
}
