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

        public var isHealthy: Bool { healthy.load(ordering: .relaxed) }
        /// False only once a check saw another chain; unknown counts as matching.
        public var chainMatches: Bool { chain.load(ordering: .relaxed) != 2 }
        public var head: UInt64? {
            let value = headBlock.load(ordering: .relaxed)
            return value == 0 ? nil : value
        }
        public var error: String? { lastError.withLock { $0 } }

        public func record(healthy: Bool, head: UInt64?, chainMatches: Bool?, error: String?) {
            self.healthy.store(healthy, ordering: .relaxed)
            if let head { headBlock.store(head, ordering: .relaxed) }
            if let chainMatches { chain.store(chainMatches ? 1 : 2, ordering: .relaxed) }
            lastError.withLock { $0 = error }
        }
    }

    public let cells: [Cell]

    public init(nodes: Int) {
        cells = (0..<nodes).map { _ in Cell() }
    }
}
