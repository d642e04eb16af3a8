/// What a key may do, declared in config and referenced by name from stored keys.
public struct Plan: Sendable, Equatable {
    public var name: String
    public var cuPerSecond: Int
    public var requestsPerSecond: Int
    /// How many seconds of budget a key may spend at once (GCRA burst tolerance).
    public var burstSeconds: Double
    /// Compute units per calendar month (UTC); nil means unlimited.
    public var monthlyCU: Int64?
    public var maxBodyBytes: Int
    public var maxBatch: Int
    public var methods: MethodPolicy
    /// Networks this plan may use; empty means all.
    public var networks: [String]
    /// Whether this plan's requests use the response cache (when it is enabled).
    public var cache = true
    /// Whether its keys may skip the cache with `Cache-Control: no-cache` (each such request
    /// goes upstream: a cost, so a plan grants it).
    public var cacheBypass = false
    /// Open client connections one key may hold at once on a replica; nil: no cap. Past it the
    /// request gets 429 and its connection closes (a client opening a connection per request,
    /// or hoarding idle ones, cannot take a replica's descriptors).
    public var maxConnections: Int?
    /// Every request of this plan's keys must carry a JWT (with `auth.jwt`).
    public var requireJWT = false
    /// Open WebSocket connections one key may hold at once on a replica; nil: no cap. A
    /// WebSocket is held for hours, so it is counted apart from `maxConnections`.
    public var maxWebSocketConnections: Int?
    /// Live `eth_subscribe` subscriptions one key may hold at once on a replica: each is a
    /// stream of events the replica sends and charges for, so a plan bounds them.
    public var maxSubscriptions = 1000
    /// The batch cap for JSON-RPC over a WebSocket (Alchemy's is 20); nil: `maxBatch`.
    public var maxWebSocketBatch: Int?
    /// Compute units per subscription event delivered, by kind: charged to the same rate limit
    /// and monthly quota as calls.
    public var eventCU: [String: Int] = ["newHeads": 20, "logs": 10, "newPendingTransactions": 10]

    public init(
        name: String, cuPerSecond: Int, requestsPerSecond: Int, burstSeconds: Double = 1, monthlyCU: Int64?,
        maxBodyBytes: Int, maxBatch: Int, methods: MethodPolicy = MethodPolicy(), networks: [String] = []
    ) {
        self.name = name
        self.cuPerSecond = cuPerSecond
        self.requestsPerSecond = requestsPerSecond
        self.burstSeconds = burstSeconds
        self.monthlyCU = monthlyCU
        self.maxBodyBytes = maxBodyBytes
        self.maxBatch = maxBatch
        self.methods = methods
        self.networks = networks
    }
}
