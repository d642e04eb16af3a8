import Foundation
import NIOCore
import TollgateDataPlane
import TollgateUpstream

/// `GET /status` on the ops listener: every network and node as the gateway sees them.
struct StatusPage: Sendable {
    struct Node: Codable {
        var upstream: String
        var healthy: Bool
        var chainMatches: Bool
        /// Out of rotation by an operator (admin API).
        var cordoned: Bool
        var head: UInt64?
        var lag: UInt64?
        /// Worst across event loops: closed, half-open, open.
        var circuit: String
        var latencyMillis: Double
        var inFlight: Int
        var lastError: String?
    }

    struct Network: Codable {
        var name: String
        var head: UInt64?
        var eligibleNodes: Int
        var nodes: [Node]
    }

    /// The networks and nodes in force.
    let upstreams: Upstreams
    let loops: LoopStates

    func render() async -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = (try? encoder.encode(["networks": await networks()])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    func networks() async -> [Network] {
        var networks: [Network] = []
        let topology = upstreams.current
        for name in topology.order {
            guard let board = topology.boards[name] else { continue }
            let names = topology.nodes[name]?.map(\.name) ?? []
            // Each loop's own view (breakers, latency, in-flight), gathered on its loop; a loop
            // whose pool is not yet the one for these nodes (a reload under way) is left out.
            var perLoop: [[NodeSnapshot]] = []
            for loop in loops.all {
                if let snapshot = try? await loop.eventLoop.submit({ (loop.pools[name] as? ResilientPool)?.snapshot() ?? [] }).get(),
                    snapshot.map(\.upstream) == names
                {
                    perLoop.append(snapshot)
                }
            }
            let head = board.cells.filter { $0.isHealthy && $0.chainMatches }.compactMap(\.head).max()
            var nodes: [Node] = []
            for (index, cell) in board.cells.enumerated() {
                let views = perLoop.compactMap { $0.indices.contains(index) ? $0[index] : nil }
                let latency = views.isEmpty ? 0 : views.map(\.latencyMillis).reduce(0, +) / Double(views.count)
                nodes.append(Node(
                    upstream: index < names.count ? names[index] : "node \(index)", healthy: cell.isHealthy, chainMatches: cell.chainMatches,
                    cordoned: cell.isCordoned, head: cell.head, lag: head.flatMap { poolHead in cell.head.map { poolHead > $0 ? poolHead - $0 : 0 } },
                    circuit: ["closed", "half-open", "open"][cell.circuitState],
                    latencyMillis: (latency * 1000).rounded() / 1000, inFlight: views.map(\.inFlight).reduce(0, +),
                    lastError: cell.error ?? views.compactMap(\.lastError).first))
            }
            let eligible = nodes.filter { $0.healthy && $0.chainMatches && !$0.cordoned && $0.circuit != "open" }.count
            networks.append(Network(name: name, head: head, eligibleNodes: eligible, nodes: nodes))
        }
        return networks
    }
}
