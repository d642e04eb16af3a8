import Logging
import TollgateAdmin
import TollgateCore
import TollgateUpstream

/// The admin API's views of plans and networks, from the config and the health boards every
/// event loop's pool reads; cordoning sets the node's flag on its board, so each loop's pool
/// stops choosing it at its next request (health checks, and so the views, go on).
struct FleetService: FleetAdministration {
    let config: TollgateConfig
    /// Per network, its nodes in board order.
    let nodes: [String: [UpstreamNode]]
    let boards: [String: NodeHealthBoard]
    let logger: Logger

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

    func cordon(network: String, node name: String, _ cordoned: Bool) -> NodeStatus? {
        guard let board = boards[network], let index = nodes[network]?.firstIndex(where: { $0.name == name }), index < board.cells.count else {
            return nil
        }
        board.cells[index].cordon(cordoned)
        logger.notice(cordoned ? "node cordoned: out of rotation until uncordoned" : "node uncordoned: back in rotation", metadata: [
            "network": "\(network)", "upstream": "\(name)",
        ])
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
