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
    /// The config in force (a reload may change plans and networks).
    let current: CurrentConfig
    let cordons: NodeCordons
    /// Where replicas share cordons (Redis, or the PostgreSQL key store); nil for one replica.
    let shared: (any CordonSharing)?
    /// Where cordons are recorded (the key store's audit log).
    let audit: AuditTrail
    let logger: Logger

    func plans() -> [Plan] { Array(current.value.plans.values) }

    func networks() -> [NetworkStatus] {
        let topology = cordons.upstreams.current
        return topology.order.compactMap { name in
            guard let board = topology.boards[name], let network = topology.configs[name] else { return nil }
            let head = board.cells.filter { $0.isHealthy && $0.chainMatches }.compactMap(\.head).max()
            let finalized = board.chain.finalized
            return NetworkStatus(
                name: name, chainID: Int64(network.chainID), head: head, finalized: finalized > 0 ? finalized : nil,
                nodes: (topology.nodes[name] ?? []).indices.map { status(topology, name, $0, poolHead: head) })
        }
    }

    func cordon(network: String, node name: String, _ cordoned: Bool) async -> NodeStatus? {
        let topology = cordons.upstreams.current
        guard let board = topology.boards[network], let index = topology.nodes[network]?.firstIndex(where: { $0.name == name }),
            index < board.cells.count
        else { return nil }
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
        return status(topology, network, index, poolHead: head)
    }

    private func status(_ topology: UpstreamTopology, _ network: String, _ index: Int, poolHead: UInt64?) -> NodeStatus {
        let node = topology.nodes[network]![index]
        let cell = topology.boards[network]!.cells[index]
        return NodeStatus(
            name: node.name, fallback: node.role == .fallback, weight: node.weight, healthy: cell.isHealthy, cordoned: cell.isCordoned,
            head: cell.head, lag: poolHead.flatMap { head in cell.head.map { head > $0 ? head - $0 : 0 } }, circuit: cell.circuitState,
            lastError: cell.error)
    }
}
