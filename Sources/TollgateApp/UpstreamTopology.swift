import CoreMetrics
import Logging
import NIOCore
import NIOSSL
import Synchronization
import TollgateCore
import TollgateUpstream

/// The networks and their nodes as the config last set them: what each loop's pools are built
/// from, and what health checks, cordons, the status page and readiness read. Made at start
/// and again by a config reload that changes `networks:`, so that nodes are added, removed or
/// re-weighted without a restart.
///
/// A rebuild keeps what is still true: a network whose config is unchanged keeps its board
/// (and its pools keep their connections); a node that stays keeps its board cell (health,
/// head, cordon, fresh streak); a network that stays keeps its chain (head, finality).
struct UpstreamTopology: Sendable {
    /// Networks in config order.
    var order: [String]
    var configs: [String: NetworkConfig]
    var networks: [String: UpstreamNetwork]
    var boards: [String: NodeHealthBoard]
    /// Per network, its nodes' WebSocket endpoints (shared subscriptions).
    var webSockets: [String: [NodeSubscriber.Endpoint]]
    var checker: HealthChecker
    /// The shortest `health_check.interval_ms` over the networks.
    var healthInterval: Duration

    /// Per network, its nodes in board order.
    var nodes: [String: [UpstreamNode]] { networks.mapValues(\.nodes) }

    /// Builds the topology `config` asks for, carrying state over from `previous`.
    /// - Throws: `TLSFileError` when a node's CA or client certificate does not load.
    static func make(
        config: TollgateConfig, tls: NIOSSLContext, checkerLoop: any EventLoop, factory: any MetricsFactory, logger: Logger,
        previous: UpstreamTopology? = nil
    ) throws -> UpstreamTopology {
        // Nodes with their own CA or client certificate get their own context, one per set of files.
        var nodeTLS: [[String]: UpstreamTLS] = [:]
        func tlsContext(_ node: NodeConfig) throws -> UpstreamTLS? {
            guard node.tlsCAFile != nil || node.tlsCertFile != nil else { return nil }
            let files = [node.tlsCAFile ?? "", node.tlsCertFile ?? "", node.tlsKeyFile ?? ""]
            if let made = nodeTLS[files] { return made }
            do {
                let made = try UpstreamTLS.make(caFile: node.tlsCAFile, certFile: node.tlsCertFile, keyFile: node.tlsKeyFile)
                nodeTLS[files] = made
                return made
            } catch {
                throw TLSFileError("TLS files of upstream \(UpstreamNode(url: node.url)?.name ?? "?"): \(error)")
            }
        }
        var configs: [String: NetworkConfig] = [:]
        var networks: [String: UpstreamNetwork] = [:]
        var boards: [String: NodeHealthBoard] = [:]
        var webSockets: [String: [NodeSubscriber.Endpoint]] = [:]
        for network in config.networks {
            let name = network.name
            configs[name] = network
            if let previous, previous.configs[name] == network, let board = previous.boards[name], let upstream = previous.networks[name] {
                networks[name] = upstream
                boards[name] = board
                webSockets[name] = previous.webSockets[name]
                continue
            }
            let nodes = try network.upstreams.compactMap { config -> UpstreamNode? in
                guard var node = config.upstreamNode else { return nil }
                node.tls = try tlsContext(config)
                return node
            }
            webSockets[name] = try network.upstreams.compactMap { config -> NodeSubscriber.Endpoint? in
                guard var endpoint = config.webSocketURL.flatMap(NodeSubscriber.Endpoint.init(url:)) else { return nil }
                endpoint.tlsContext = try tlsContext(config)
                endpoint.healthName = config.upstreamNode?.name
                return endpoint
            }
            networks[name] = upstreamNetwork(network, nodes: nodes, factory: factory)
            boards[name] = board(for: nodes, finalityDepth: network.finalityDepth, replacing: previous.flatMap { old in
                old.boards[name].map { ($0, old.nodes[name] ?? []) }
            })
        }
        let checker = HealthChecker(
            targets: config.networks.map { network in
                HealthChecker.Target(network: networks[network.name]!, chainID: UInt64(network.chainID), board: boards[network.name]!)
            },
            eventLoop: checkerLoop, tls: tls, timeout: .milliseconds(config.networks.map(\.healthTimeoutMillis).max() ?? 2_000), logger: logger)
        return UpstreamTopology(
            order: config.networks.map(\.name), configs: configs, networks: networks, boards: boards, webSockets: webSockets,
            checker: checker, healthInterval: .milliseconds(config.networks.map(\.healthIntervalMillis).min() ?? 5_000))
    }

    /// A board for `nodes`: each node that was on `old` under the same name keeps its cell
    /// (each old cell used once), and the chain stays when the finality depth did.
    static func board(for nodes: [UpstreamNode], finalityDepth: UInt64, replacing old: (NodeHealthBoard, [UpstreamNode])?) -> NodeHealthBoard {
        guard let (board, oldNodes) = old else { return NodeHealthBoard(nodes: nodes.count, finalityDepth: finalityDepth) }
        var unused = Array(zip(oldNodes.map(\.name), board.cells))
        let cells = nodes.map { node in
            guard let match = unused.firstIndex(where: { $0.0 == node.name }) else { return NodeHealthBoard.Cell() }
            return unused.remove(at: match).1
        }
        let chain = board.chain.finalityDepth == finalityDepth ? board.chain : ChainTracker(finalityDepth: finalityDepth)
        return NodeHealthBoard(cells: cells, chain: chain)
    }

    /// The pools's settings for one network.
    static func upstreamNetwork(_ network: NetworkConfig, nodes: [UpstreamNode], factory: any MetricsFactory) -> UpstreamNetwork {
        var upstream = UpstreamNetwork(
            name: network.name, nodes: nodes,
            timeout: .milliseconds(network.timeoutMillis), connectTimeout: .milliseconds(network.connectTimeoutMillis),
            attemptTimeout: network.attemptTimeoutMillis.map { .milliseconds($0) }, maxBlockLag: network.maxBlockLag,
            circuitBreaker: network.circuitBreaker, retryRatio: network.retryRatio, maxAttempts: network.maxAttempts,
            methodTimeouts: network.methodTimeoutsMillis.map { (MethodMatcher([$0.key]), Duration.milliseconds($0.value)) },
            hedge: network.hedge)
        upstream.finalityDepth = network.finalityDepth
        upstream.maxResponseBytes = network.maxResponseBytes
        let name = network.name
        upstream.undecodableAnswer = { reason in
            Counter(label: "tollgate_upstream_undecodable_total", dimensions: [("network", name), ("reason", reason.rawValue)], factory: factory)
                .increment()
        }
        return upstream
    }

    /// One loop's pools, made on that loop: a network whose board is unchanged keeps its pool;
    /// a changed one gets a new pool that carries over its predecessor's breakers and latencies.
    func pools(
        on eventLoop: any EventLoop, tls: NIOSSLContext, logger: Logger,
        replacing current: [String: any UpstreamPool] = [:], previous: UpstreamTopology? = nil
    ) -> [String: any UpstreamPool] {
        var pools: [String: any UpstreamPool] = [:]
        for name in order {
            guard let network = networks[name], let board = boards[name] else { continue }
            let existing = current[name] as? ResilientPool
            if let existing, let previous, previous.boards[name] === board {
                pools[name] = existing
                continue
            }
            pools[name] = ResilientPool(network: network, eventLoop: eventLoop, tls: tls, health: board, logger: logger, previous: existing)
        }
        return pools
    }

    /// What changed toward `previous`, for the reload's log: networks added and removed, and
    /// per changed network the nodes added and removed.
    func changes(from previous: UpstreamTopology) -> [String] {
        var changes: [String] = []
        for name in order where previous.configs[name] == nil { changes.append("network \(name) added") }
        for name in previous.order where configs[name] == nil { changes.append("network \(name) removed") }
        for name in order {
            guard let old = previous.configs[name], let new = configs[name], old != new else { continue }
            let before = Set(previous.nodes[name]?.map(\.name) ?? []), after = Set(nodes[name]?.map(\.name) ?? [])
            var parts: [String] = []
            if !after.subtracting(before).isEmpty { parts.append("+" + after.subtracting(before).sorted().joined(separator: ",+")) }
            if !before.subtracting(after).isEmpty { parts.append("-" + before.subtracting(after).sorted().joined(separator: ",-")) }
            changes.append("network \(name) changed" + (parts.isEmpty ? "" : " (" + parts.joined(separator: " ") + ")"))
        }
        return changes
    }
}

/// The topology in force, read by health checks, cordons, the status page and readiness, and
/// replaced by a config reload.
final class Upstreams: Sendable {
    private let state: Mutex<UpstreamTopology>
    /// The client TLS context for nodes without their own files.
    let tls: NIOSSLContext

    init(_ topology: UpstreamTopology, tls: NIOSSLContext) {
        state = Mutex(topology)
        self.tls = tls
    }

    var current: UpstreamTopology { state.withLock { $0 } }

    /// Installs `topology`.
    func replace(with topology: UpstreamTopology) {
        state.withLock { $0 = topology }
    }
}
