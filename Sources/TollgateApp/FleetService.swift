import Logging
import TollgateAdmin
import TollgateCore
import TollgateRedis
import TollgateUpstream

/// The admin API's views of plans and networks, from the config and the health boards every
/// event loop's pool reads; cordoning sets the node's flag on its board, so each loop's pool
/// stops choosing it at its next request (health checks, and so the views, go on). With Redis,
/// or else a PostgreSQL key store, a cordon goes to every replica (`CordonSync`).
struct FleetService: FleetAdministration {
    let config: TollgateConfig
    let cordons: NodeCordons
    /// Where replicas share cordons (Redis, or the PostgreSQL key store); nil for one replica.
    let shared: (any CordonSharing)?
    /// Where cordons are recorded (the key store's audit log).
    let audit: AuditTrail
    let logger: Logger

    var nodes: [String: [UpstreamNode]] { cordons.nodes }
    var boards: [String: NodeHealthBoard] { cordons.boards }

    func plans() -> [Plan] { Array(config.plans.values) }

    func networks() -> [NetworkStatus] {
        config.networks.compactMap { network in
            guard let board = boards[network.name] else { return nil }
            let head = board.cells.filter { $0.isHealthy && $0.chainMatches }.compactMap(\.head).max()
            let finalized = board.chain.finalized
            return NetworkStatus(
                name: network.name, chainID: Int64(network.chainID), head: head, finalized: finalized > 0 ? finalized : nil,
                nodes: (nodes[network.name] ?? []).indices.map { status(network.name, $0, poolHead: head) })
        }
    }

    func cordon(network: String, node name: String, _ cordoned: Bool) async -> NodeStatus? {
        guard let index = cordons.index(network: network, node: name), let board = boards[network] else { return nil }
        // The shared set first, so this replica's next read of it agrees with what it applies.
        if let shared {
            do {
                try await shared.share(network: network, node: name, cordoned)
            } catch {
                logger.warning("cordon not shared: the shared store did not answer; it holds on this replica only", metadata: [
                    "network": "\(network)", "upstream": "\(name)", "error": "\(error)",
                ])
            }
        }
        let before = board.cells[index].isCordoned
        cordons.set(network: network, node: name, cordoned, by: "the admin API")
        await audit.record(cordoned ? "node.cordon" : "node.uncordon", target: "\(network)/\(name)", before: ["cordoned": before], after: ["cordoned": cordoned])
        let head = board.cells.filter { $0.isHealthy && $0.chainMatches }.compactMap(\.head).max()
        return status(network, index, poolHead: head)
    }

    private func status(_ network: String, _ index: Int, poolHead: UInt64?) -> NodeStatus {
        let node = nodes[network]![index]
        let cell = boards[network]!.cells[index]
        return NodeStatus(
            name: node.name, fallback: node.role == .fallback, weight: node.weight, healthy: cell.isHealthy, cordoned: cell.isCordoned,
            head: cell.head, lag: poolHead.flatMap { head in cell.head.map { head > $0 ? head - $0 : 0 } }, circuit: cell.circuitState,
            lastError: cell.error)
    }
}
