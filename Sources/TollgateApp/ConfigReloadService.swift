import CoreMetrics
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateDataPlane
import UnixSignals
import Yams

/// Re-reads the config file on SIGHUP (`tollgate reload` sends it) and applies what can change
/// live: plans, the compute-unit table, and networks with their nodes and settings. A file that
/// does not parse, or whose nodes' TLS files do not load, is refused with its errors by path
/// and the config in force stays; sections that changed but need a restart (listeners, store,
/// Redis, telemetry, cache, auth, and a network's WebSocket upstreams) are named in the log.
/// The blocklist, TLS and JWT key files follow their own files already.
public final class ConfigReloadService: Service {
    /// What one reload did.
    public struct Outcome: Sendable, Equatable {
        /// Sections applied (`compute_units`, `networks`, `plans`).
        public var applied: [String] = []
        /// Sections that changed and take effect at the next start.
        public var needRestart: [String] = []
        /// Why the new file was refused (nothing applied).
        public var errors: [ConfigIssue] = []

        /// `{"applied":[…],"needs_restart":[…],"errors":["path: message",…]}`, for `POST /reload`.
        public var json: String {
            func list(_ items: [String]) -> String {
                "[" + items.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    .replacingOccurrences(of: "\n", with: " ") + "\"" }.joined(separator: ",") + "]"
            }
            return #"{"applied":\#(list(applied)),"needs_restart":\#(list(needRestart)),"errors":\#(list(errors.map(\.description)))}"# + "\n"
        }
    }

    /// What a reload changes besides the gateway's plans: the networks and nodes, and the
    /// config the admin API reads.
    struct Live: Sendable {
        let config: CurrentConfig
        let upstreams: Upstreams
        /// Where a new topology's health checker runs.
        let checkerLoop: any EventLoop
        let factory: any MetricsFactory
    }

    let path: String
    let gateway: Gateway
    let live: Live
    let logger: Logger
    let trapsSIGHUP: Bool
    /// The text last applied (or started with).
    private let current: Mutex<String>
    /// The reload running or last run, which the next one waits for.
    private let queue = Mutex<Task<Void, Never>?>(nil)

    init(path: String, initialText: String, gateway: Gateway, live: Live, logger: Logger, trapsSIGHUP: Bool) {
        self.path = path
        self.gateway = gateway
        self.live = live
        self.logger = logger
        self.trapsSIGHUP = trapsSIGHUP
        current = Mutex(initialText)
    }

    public func run() async throws {
        guard trapsSIGHUP else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            for await _ in await UnixSignalsSequence(trapping: .sighup) { _ = await self.reload() }
        }
    }

    /// Reads the file and applies it. Reloads run one after another (a SIGHUP and a
    /// `POST /reload` at once): each builds on what the one before put in force.
    @discardableResult
    public func reload() async -> Outcome {
        let mine: Task<Outcome, Never> = queue.withLock { last in
            let before = last
            let next = Task { await before?.value; return await self.reloadNow() }
            last = Task { _ = await next.value }
            return next
        }
        return await mine.value
    }

    private func reloadNow() async -> Outcome {
        guard let text = SecretFile.read(path) else {
            let outcome = Outcome(errors: [ConfigIssue(path: path, message: "cannot read file")])
            logger.error("config not reloaded: cannot read \(path); the config in force stays")
            return outcome
        }
        let config: TollgateConfig
        do {
            config = try ConfigReader.parse(yaml: text)
        } catch {
            logger.error("config not reloaded: the new file has errors; the config in force stays", metadata: [
                "file": "\(path)", "errors": "\(error.description)",
            ])
            return Outcome(errors: error.issues)
        }
        let old = current.withLock { $0 }
        var outcome = Outcome()
        let changed = Self.changedSections(old, text)
        let liveSections: Set<String> = ["plans", "compute_units", "networks"]
        outcome.applied = changed.filter(liveSections.contains)
        outcome.needRestart = changed.filter { !liveSections.contains($0) }
        // The new networks are built before anything is applied: a node TLS file that does not
        // load refuses the whole file.
        var topology: (new: UpstreamTopology, old: UpstreamTopology)?
        if outcome.applied.contains("networks") {
            let previous = live.upstreams.current
            do {
                let made = try UpstreamTopology.make(
                    config: config, tls: live.upstreams.tls, checkerLoop: live.checkerLoop, factory: live.factory, logger: logger,
                    previous: previous)
                topology = (made, previous)
            } catch {
                logger.error("config not reloaded: \(error); the config in force stays", metadata: ["file": "\(path)"])
                return Outcome(errors: [ConfigIssue(path: "networks", message: "\(error)")])
            }
            for name in Self.webSocketChanges(from: previous, to: config) { outcome.needRestart.append("networks.\(name) (WebSocket upstreams)") }
        }
        if outcome.applied.contains("plans") || outcome.applied.contains("compute_units") {
            await gateway.reload(plans: config.plans, computeUnits: config.computeUnitTable)
        }
        if let topology {
            await apply(topology.new, replacing: topology.old)
        }
        live.config.apply(liveSectionsOf: config)
        current.withLock { $0 = text }
        logger.notice("config reloaded", metadata: [
            "file": "\(path)", "applied": "\(outcome.applied.joined(separator: ","))",
            "needs_restart": "\(outcome.needRestart.joined(separator: ","))",
        ])
        if !outcome.needRestart.isEmpty {
            logger.warning("config sections changed that apply only at the next start", metadata: ["sections": "\(outcome.needRestart.joined(separator: ", "))"])
        }
        return outcome
    }

    /// Puts new networks in force: one health round first (a node on the wrong chain, or down,
    /// is never chosen), then the topology everything else reads, then each loop's pools.
    /// Requests already sent finish on the pool they started with.
    private func apply(_ topology: UpstreamTopology, replacing previous: UpstreamTopology) async {
        await topology.checker.checkAll()
        live.upstreams.replace(with: topology)
        let tls = live.upstreams.tls, logger = self.logger
        await gateway.replacePools { loop in
            topology.pools(on: loop.eventLoop, tls: tls, logger: logger, replacing: loop.pools, previous: previous)
        }
        for change in topology.changes(from: previous) {
            logger.notice("upstreams reloaded: \(change)")
        }
    }

    /// Networks whose WebSocket upstreams (`ws_url`, `ws_stall_ms`) the reload changed: shared
    /// subscriptions keep the ones they started with until the next start.
    static func webSocketChanges(from previous: UpstreamTopology, to config: TollgateConfig) -> [String] {
        func setup(_ network: NetworkConfig?) -> [String] {
            guard let network, network.upstreams.contains(where: { $0.webSocketURL != nil }) else { return [] }
            return network.upstreams.compactMap(\.webSocketURL) + ["\(network.webSocketStallMillis)"]
        }
        let names = Set(previous.order).union(config.networks.map(\.name))
        return names.sorted().filter { name in
            setup(previous.configs[name]) != setup(config.networks.first { $0.name == name })
        }
    }

    /// Top-level sections whose YAML differs (by value, not by text: comments and spacing do
    /// not count).
    public static func changedSections(_ old: String, _ new: String) -> [String] {
        func sections(_ text: String) -> [String: Node] {
            guard let root = try? Yams.compose(yaml: text), case .mapping(let map) = root else { return [:] }
            var result: [String: Node] = [:]
            for (key, value) in map { if let name = key.string { result[name] = value } }
            return result
        }
        let before = sections(old)
        let after = sections(new)
        return Set(before.keys).union(after.keys).sorted().filter { before[$0] != after[$0] }
    }
}
