import Logging
import NIOCore
import NIOSSL
import TollgateCore

/// Runs active health checks for every node of every network and records what it finds on
/// each network's `NodeHealthBoard`, which every event loop's pool reads.
///
/// Its connections live on one event loop of their own choosing, apart from client traffic;
/// all access to them goes through that loop.
public final class HealthChecker: @unchecked Sendable {
    public struct Target: Sendable {
        public var network: UpstreamNetwork
        public var chainID: UInt64
        public var board: NodeHealthBoard

        public init(network: UpstreamNetwork, chainID: UInt64, board: NodeHealthBoard) {
            self.network = network
            self.chainID = chainID
            self.board = board
        }
    }

    public struct Report: Sendable {
        public var network: String
        /// The node's position in the network's list (its board cell).
        public var index: Int
        public var upstream: String
        public var healthy: Bool
        public var head: UInt64?
        public var finding: HealthProbe.Finding
        /// What this node's report changed in the network's chain state (`.none` if unhealthy).
        public var chainChange: ChainState.Change = .none
    }

    private let targets: [Target]
    private let connections: [[NodeConnections]]
    private let eventLoop: any EventLoop
    private let timeout: TimeAmount
    private let logger: Logger

    public init(targets: [Target], eventLoop: any EventLoop, tls: NIOSSLContext?, timeout: Duration, logger: Logger) {
        self.targets = targets
        self.eventLoop = eventLoop
        self.timeout = .nanoseconds(timeout.nanoseconds)
        self.logger = logger
        self.connections = targets.map { target in
            target.network.nodes.map { NodeConnections(node: $0, eventLoop: eventLoop, tls: tls, settings: target.network) }
        }
    }

    /// One round: every node checked at once; returns what was found, after recording it.
    @discardableResult
    public func checkAll() async -> [Report] {
        await withTaskGroup(of: Report.self) { group in
            for (networkIndex, target) in targets.enumerated() {
                for nodeIndex in target.network.nodes.indices {
                    group.addTask { await self.check(networkIndex, nodeIndex) }
                }
            }
            var reports: [Report] = []
            for await report in group { reports.append(report) }
            return reports
        }
    }

    private func check(_ networkIndex: Int, _ nodeIndex: Int) async -> Report {
        let target = targets[networkIndex]
        let node = target.network.nodes[nodeIndex]
        let promise = eventLoop.makePromise(of: HealthProbe.Finding.self)
        eventLoop.execute {
            let request = UpstreamRequest(body: HealthProbe.body, requestID: "health-check", retryable: true)
            self.connections[networkIndex][nodeIndex].exchange(request, timeout: self.timeout) { result in
                switch result {
                case .success(let response):
                    promise.succeed(HealthProbe.finding(status: Int(response.status.code), body: response.body))
                case .failure(let failure):
                    let reason = failure == .connect ? "connect failed" : failure == .timeout ? "health check timed out" : "\(failure)"
                    promise.succeed(.init(reachable: false, chainID: nil, head: nil, syncing: false, error: reason))
                }
            }
        }
        let finding = (try? await promise.futureResult.get())
            ?? .init(reachable: false, chainID: nil, head: nil, syncing: false, error: "check failed")
        let cell = target.board.cells[nodeIndex]
        let wasHealthy = cell.isHealthy
        let healthy = finding.healthy(expectedChain: target.chainID)
        let chainMatches = finding.chainID.map { $0 == target.chainID }
        var error = finding.error
        if chainMatches == false { error = "node is on chain \(finding.chainID!), not \(target.chainID)" }
        cell.record(healthy: healthy, head: finding.head, chainMatches: chainMatches, error: error)
        if wasHealthy != healthy || chainMatches == false {
            logger.log(level: healthy ? .notice : .warning, healthy ? "upstream healthy" : "upstream unhealthy", metadata: [
                "network": "\(target.network.name)", "upstream": "\(node.name)", "reason": "\(error ?? "-")",
            ])
        }
        var change = ChainState.Change.none
        // Only a node fit to serve speaks for the chain: a lagging or wrong-chain node's head
        // must not move it (and being lower, it could not lower it anyway).
        if healthy, let head = finding.head {
            change = target.board.chain.observe(.init(head: head, hash: finding.headHash, parentHash: finding.parentHash, finalized: finding.finalized))
            if case .reorg(let ancestor, let newHead) = change {
                logger.warning("reorg detected", metadata: [
                    "network": "\(target.network.name)", "upstream": "\(node.name)", "common_ancestor": "\(ancestor)", "new_head": "\(newHead)",
                ])
            }
        }
        let networkHead = target.board.chain.head
        cell.recordFreshness(healthy && chainMatches != false && finding.head.map { $0 + target.network.maxBlockLag >= networkHead } == true)
        return Report(
            network: target.network.name, index: nodeIndex, upstream: node.name, healthy: healthy, head: finding.head, finding: finding,
            chainChange: change)
    }

    public func close() async {
        try? await eventLoop.submit { for nodes in self.connections { for node in nodes { node.close() } } }.get()
    }
}
