import Logging
import NIOCore
import Synchronization

/// A Redis client for standalone servers, Sentinel-managed masters and Clusters.
///
/// Every command names the key it touches (`key:`), so a cluster client can route it by hash
/// slot; `MOVED` updates the slot map and retries, `ASK` retries once on the migrating node
/// after `ASKING`, a lost connection refreshes the map (or asks the Sentinels for the master)
/// and retries after a short pause, up to `maxRedirects` times.
public final class RedisClient: Sendable {
    public let configuration: RedisConfiguration
    let logger: Logger
    private let state = Mutex(State())

    struct State {
        var pools: [ClusterSlotMap.Node: RedisNodePool] = [:]
        var slots = ClusterSlotMap()
        /// The master as Sentinel last reported it.
        var master: ClusterSlotMap.Node?
        var closed = false
    }

    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "tollgate.redis")) {
        precondition(!configuration.addresses.isEmpty, "at least one Redis address")
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs one command. An error reply throws `RedisError.server`.
    /// - Parameter failFast: on a lost or refused connection, throw at once instead of
    ///   retrying with backoff: for callers with a local fallback (leases) that must not wait.
    @discardableResult
    public func execute(_ arguments: [RESPArgument], key: String? = nil, failFast: Bool = false) async throws -> RESPValue {
        var asking: ClusterSlotMap.Node?
        var lastError: any Error = RedisError.unavailable("no attempt made")
        for attempt in 0...configuration.maxRedirects {
            do {
                let node: ClusterSlotMap.Node
                if let asking { node = asking } else { node = try await route(key: key) }
                let connection = try await pool(for: node).connection()
                if asking != nil {
                    let answers = try await connection.pipeline([["ASKING"], arguments])
                    asking = nil
                    if case .error(let message) = answers[1] { throw RedisError.server(message) }
                    return answers[1]
                }
                return try await connection.send(arguments)
            } catch let error as RedisError {
                lastError = error
                guard attempt < configuration.maxRedirects else { break }
                switch error {
                case .server(let message):
                    if let redirect = ClusterRedirect(message) {
                        switch redirect {
                        case .moved(let slot, let node):
                            state.withLock { $0.slots.moved(slot: slot, to: node) }
                        case .ask(_, let node):
                            asking = node
                        }
                        continue
                    }
                    if message.hasPrefix("READONLY") || message.hasPrefix("MASTERDOWN") || message.hasPrefix("CLUSTERDOWN")
                        || message.hasPrefix("TRYAGAIN") || message.hasPrefix("LOADING")
                    {
                        await forgetTopology()
                        try await Task.sleep(for: .milliseconds(50 * (attempt + 1)))
                        continue
                    }
                    throw error
                case .connectionClosed, .timeout, .unavailable:
                    await forgetTopology()
                    if failFast { throw error }
                    try await Task.sleep(for: .milliseconds(100 * (attempt + 1)))
                }
            }
        }
        throw lastError
    }

    /// `EVALSHA`, loading the script first if the server does not know it.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [RESPArgument], failFast: Bool = false) async throws -> RESPValue {
        var command: [RESPArgument] = ["EVALSHA", .string(script.sha1), .integer(Int64(keys.count))]
        command += keys.map { .string($0) }
        command += arguments
        do {
            return try await execute(command, key: keys.first, failFast: failFast)
        } catch RedisError.server(let message) where message.hasPrefix("NOSCRIPT") {
            try await execute(["SCRIPT", "LOAD", .string(script.source)], key: keys.first, failFast: failFast)
            return try await execute(command, key: keys.first, failFast: failFast)
        }
    }

    /// Listens on `channel` (on the master, or any cluster node: PUBLISH reaches every node),
    /// resubscribing after a lost connection until the subscription is cancelled.
    public func subscribe(_ channel: String, onMessage: @escaping @Sendable (String) -> Void) -> RedisSubscription {
        RedisSubscription(client: self, channel: channel, onMessage: onMessage)
    }

    public func close() async {
        let pools = state.withLock { state -> [RedisNodePool] in
            state.closed = true
            defer { state.pools = [:] }
            return Array(state.pools.values)
        }
        for pool in pools { await pool.close() }
    }

    /// The slot map as the client knows it (tests, `/status`).
    public var slotMap: ClusterSlotMap { state.withLock { $0.slots } }

    /// Replaces the slot map (tests: a stale map, to see `MOVED` followed).
    func replaceSlotMap(_ map: ClusterSlotMap) {
        state.withLock { $0.slots = map }
    }

    // MARK: - Routing

    /// The server a command goes to.
    func route(key: String?) async throws -> ClusterSlotMap.Node {
        switch configuration.mode {
        case .standalone:
            return configuration.addresses[0]
        case .sentinel(let name):
            if let master = state.withLock({ $0.master }) { return master }
            let master = try await resolveMaster(name)
            state.withLock { $0.master = master }
            return master
        case .cluster:
            if state.withLock({ $0.slots.isEmpty }) { try await refreshSlots() }
            let slot = key.map(HashSlot.of) ?? 0
            if let node = state.withLock({ $0.slots.node(forSlot: slot) }) { return node }
            if let any = state.withLock({ $0.slots.masters.first }) { return any }
            throw RedisError.unavailable("no master serves slot \(slot)")
        }
    }

    func pool(for node: ClusterSlotMap.Node) throws -> RedisNodePool {
        try state.withLock { state in
            guard !state.closed else { throw RedisError.connectionClosed("client closed") }
            if let pool = state.pools[node] { return pool }
            let pool = RedisNodePool(node: node, options: configuration.options, size: configuration.connectionsPerNode)
            state.pools[node] = pool
            return pool
        }
    }

    /// After an error that may mean the topology changed: ask again next time.
    func forgetTopology() async {
        switch configuration.mode {
        case .standalone: break
        case .sentinel: state.withLock { $0.master = nil }
        case .cluster: try? await refreshSlots()
        }
    }

    /// Asks each Sentinel in turn for the master's address.
    func resolveMaster(_ name: String) async throws -> ClusterSlotMap.Node {
        for sentinel in configuration.addresses {
            guard let connection = try? await RedisConnection.connect(host: sentinel.host, port: sentinel.port, options: configuration.sentinelOptions)
            else { continue }
            defer { connection.close() }
            guard let reply = try? await connection.send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", .string(name)]),
                let fields = reply.elements, fields.count == 2, let host = fields[0].string, let port = fields[1].int
            else { continue }
            let master = ClusterSlotMap.Node(host: host, port: Int(port))
            logger.debug("sentinel reports master", metadata: ["master": "\(master)", "name": "\(name)"])
            return master
        }
        throw RedisError.unavailable("no Sentinel knows a master named '\(name)'")
    }

    /// Learns the slot map from the first node that answers `CLUSTER SLOTS`: known masters
    /// first, then the seeds.
    func refreshSlots() async throws {
        let known = state.withLock { Array($0.slots.masters) }
        for node in known + configuration.addresses {
            guard let connection = try? await pool(for: node).connection(),
                let reply = try? await connection.send(["CLUSTER", "SLOTS"]),
                let map = ClusterSlotMap(clusterSlots: reply, answeredBy: node), !map.isEmpty
            else { continue }
            state.withLock { $0.slots = map }
            return
        }
        throw RedisError.unavailable("no cluster node answered CLUSTER SLOTS")
    }
}
