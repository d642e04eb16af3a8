import Synchronization

/// What active health checks last found about each node of a network, shared by every event
/// loop's pool. Written by the health checker, read on the request path with atomic loads.
public final class NodeHealthBoard: Sendable {
    public final class Cell: Sendable {
        fileprivate let healthy = Atomic<Bool>(true)
        /// 0 unknown, 1 matches the network's chain id, 2 another chain.
        fileprivate let chain = Atomic<UInt8>(0)
        /// 0 until a check has read the node's head.
        fileprivate let headBlock = Atomic<UInt64>(0)
        private let lastError = Mutex<String?>(nil)
        /// How many event loops hold this node's circuit open, and half-open.
        fileprivate let openLoops = Atomic<Int>(0)
        fileprivate let halfOpenLoops = Atomic<Int>(0)
        /// Taken out of rotation by an operator (admin API); health checks go on.
        fileprivate let cordonedFlag = Atomic<Bool>(false)
        /// Consecutive checks that found the node healthy, on the network's chain, and at most
        /// the network's allowed lag behind its head: what a subscription asks of a node.
        fileprivate let freshChecks = Atomic<Int>(0)

        public init() {}

        public var freshStreak: Int { freshChecks.load(ordering: .relaxed) }
        public func recordFreshness(_ fresh: Bool) {
            if fresh { freshChecks.add(1, ordering: .relaxed) } else { freshChecks.store(0, ordering: .relaxed) }
        }

        public var isCordoned: Bool { cordonedFlag.load(ordering: .relaxed) }
        public func cordon(_ on: Bool) { cordonedFlag.store(on, ordering: .relaxed) }

        public var isHealthy: Bool { healthy.load(ordering: .relaxed) }
        /// False only once a check saw another chain; unknown counts as matching.
        public var chainMatches: Bool { chain.load(ordering: .relaxed) != 2 }
        public var head: UInt64? {
            let value = headBlock.load(ordering: .relaxed)
            return value == 0 ? nil : value
        }
        public var error: String? { lastError.withLock { $0 } }

        /// The worst circuit state across event loops: 0 closed, 1 half-open, 2 open.
        public var circuitState: Int {
            if openLoops.load(ordering: .relaxed) > 0 { return 2 }
            return halfOpenLoops.load(ordering: .relaxed) > 0 ? 1 : 0
        }

        /// One loop's breaker moved from `old` to `new` (gauge values as in `circuitState`).
        public func circuitMoved(from old: Int, to new: Int) {
            guard old != new else { return }
            if old == 2 { openLoops.subtract(1, ordering: .relaxed) }
            if old == 1 { halfOpenLoops.subtract(1, ordering: .relaxed) }
            if new == 2 { openLoops.add(1, ordering: .relaxed) }
            if new == 1 { halfOpenLoops.add(1, ordering: .relaxed) }
        }

        public func record(healthy: Bool, head: UInt64?, chainMatches: Bool?, error: String?) {
            self.healthy.store(healthy, ordering: .relaxed)
            if let head { headBlock.store(head, ordering: .relaxed) }
            if let chainMatches { chain.store(chainMatches ? 1 : 2, ordering: .relaxed) }
            lastError.withLock { $0 = error }
        }
    }

    public let cells: [Cell]
    /// The network's chain as its healthy nodes report it: head, finality, reorgs.
    public let chain: ChainTracker

    public init(nodes: Int, finalityDepth: UInt64 = 64) {
        cells = (0..<nodes).map { _ in Cell() }
        chain = ChainTracker(finalityDepth: finalityDepth)
    }

    /// A network's board after a config reload changed its nodes: a node that stays keeps its
    /// cell (health, head, cordon, fresh streak), a new one starts as a node does at start, and
    /// the network keeps its chain (head, finality, what the cache has seen).
    public init(cells: [Cell], chain: ChainTracker) {
        self.cells = cells
        self.chain = chain
    }
}
