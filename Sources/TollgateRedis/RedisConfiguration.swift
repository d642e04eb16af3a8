/// How to reach Redis: one server, a Sentinel-managed master, or a Cluster.
public struct RedisConfiguration: Sendable {
    public enum Mode: Sendable, Equatable {
        case standalone
        /// `addresses` are the Sentinels; the master is asked for by name.
        case sentinel(masterName: String)
        /// `addresses` are seed nodes; the slot map is learned from them.
        case cluster
    }

    public var mode: Mode
    public var addresses: [ClusterSlotMap.Node]
    public var options: RedisConnection.Options
    /// Options for talking to Sentinels (they often have their own password, or none).
    public var sentinelOptions: RedisConnection.Options
    /// Pipelined connections per server.
    public var connectionsPerNode: Int
    /// Redirects and reconnects one command may go through before it fails.
    public var maxRedirects: Int

    public init(
        mode: Mode, addresses: [ClusterSlotMap.Node], options: RedisConnection.Options = .init(),
        sentinelOptions: RedisConnection.Options? = nil, connectionsPerNode: Int = 2, maxRedirects: Int = 5
    ) {
        self.mode = mode
        self.addresses = addresses
        self.options = options
        self.sentinelOptions = sentinelOptions ?? RedisConnection.Options(
            tls: options.tls, connectTimeout: options.connectTimeout, commandTimeout: options.commandTimeout, resp3: options.resp3)
        self.connectionsPerNode = max(1, connectionsPerNode)
        self.maxRedirects = maxRedirects
    }
}
