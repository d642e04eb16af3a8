import Logging
import TollgateCore
import TollgateUpstream

/// Cordons on this replica's health boards, by network and node name: every event loop's pool
/// reads a node's flag before choosing it, so a change applies at each loop's next request.
struct NodeCordons: Sendable {
    /// Per network, its nodes in board order.
    let nodes: [String: [UpstreamNode]]
    let boards: [String: NodeHealthBoard]
    let logger: Logger

    /// The node's index on its board; nil when the network has no node of that name.
    func index(network: String, node name: String) -> Int? {
        guard let board = boards[network], let index = nodes[network]?.firstIndex(where: { $0.name == name }), index < board.cells.count else {
            return nil
        }
        return index
    }

    /// Sets the flag; logs only a change. False when there is no such node.
    @discardableResult
    func set(network: String, node name: String, _ cordoned: Bool, by origin: String) -> Bool {
        guard let index = index(network: network, node: name), let cell = boards[network]?.cells[index] else { return false }
        guard cell.isCordoned != cordoned else { return true }
        cell.cordon(cordoned)
        logger.notice(cordoned ? "node cordoned: out of rotation until uncordoned" : "node uncordoned: back in rotation", metadata: [
            "network": "\(network)", "upstream": "\(name)", "by": "\(origin)",
        ])
        return true
    }
}
