import Logging
import TollgateCore
import TollgateUpstream

/// Cordons on this replica's health boards, by network and node name: every event loop's pool
/// reads a node's flag before choosing it, so a change applies at each loop's next request.
struct NodeCordons: Sendable {
    /// The networks and nodes in force (a config reload may change them; a node that stays
    /// keeps its cell, and so its cordon).
    let upstreams: Upstreams
    let logger: Logger

    /// The node's cell; nil when the network has no node of that name.
    func cell(network: String, node name: String) -> NodeHealthBoard.Cell? {
        let topology = upstreams.current
        guard let board = topology.boards[network], let index = topology.networks[network]?.nodes.firstIndex(where: { $0.name == name }),
            index < board.cells.count
        else {
            return nil
        }
        return board.cells[index]
    }

    /// Sets the flag; logs only a change. False when there is no such node.
    @discardableResult
    func set(network: String, node name: String, _ cordoned: Bool, by origin: String) -> Bool {
        guard let cell = cell(network: network, node: name) else { return false }
        guard cell.isCordoned != cordoned else { return true }
        cell.cordon(cordoned)
        logger.notice(cordoned ? "node cordoned: out of rotation until uncordoned" : "node uncordoned: back in rotation", metadata: [
            "network": "\(network)", "upstream": "\(name)", "by": "\(origin)",
        ])
        return true
    }
}
