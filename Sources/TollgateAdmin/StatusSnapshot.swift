/// What the status page shows, gathered by the app at the moment a page is asked for: the
/// fleet as the gateway sees it, the traffic of the last minutes, the backends' last probes.
///
/// Plain values, so that the page is rendered (and tested) without a server behind it.
public struct StatusSnapshot: Sendable {
    public struct Node: Sendable {
        public var name: String
        public var healthy: Bool
        public var cordoned: Bool
        public var head: UInt64?
        public var lag: UInt64?
        /// closed, half-open or open: the worst across event loops.
        public var circuit: String
        public var latencyMillis: Double
        public var lastError: String?

        public init(
            name: String, healthy: Bool, cordoned: Bool, head: UInt64?, lag: UInt64?, circuit: String, latencyMillis: Double,
            lastError: String?
        ) {
            self.name = name
            self.healthy = healthy
            self.cordoned = cordoned
            self.head = head
            self.lag = lag
            self.circuit = circuit
            self.latencyMillis = latencyMillis
            self.lastError = lastError
        }

        /// Chosen by the pool right now: healthy, not cordoned, circuit not open.
        public var inRotation: Bool { healthy && !cordoned && circuit != "open" }
    }

    public struct Network: Sendable {
        public var name: String
        public var head: UInt64?
        public var nodes: [Node]

        public init(name: String, head: UInt64?, nodes: [Node]) {
            self.name = name
            self.head = head
            self.nodes = nodes
        }
    }

    /// One interval of the traffic history, as rates over that interval.
    public struct Traffic: Sendable, Equatable {
        /// Seconds before the snapshot at which the interval ended.
        public var secondsAgo: Int
        public var requestsPerSecond: Double
        /// Answers with a 5xx status.
        public var errorsPerSecond: Double
        public var rateLimitedPerSecond: Double
        /// Hits over cache lookups; nil when nothing was looked up.
        public var cacheHitRatio: Double?

        public init(secondsAgo: Int, requestsPerSecond: Double, errorsPerSecond: Double, rateLimitedPerSecond: Double, cacheHitRatio: Double?) {
            self.secondsAgo = secondsAgo
            self.requestsPerSecond = requestsPerSecond
            self.errorsPerSecond = errorsPerSecond
            self.rateLimitedPerSecond = rateLimitedPerSecond
            self.cacheHitRatio = cacheHitRatio
        }
    }

    public struct Backend: Sendable {
        /// keystore, redis, clickhouse.
        public var name: String
        /// nil before the first probe.
        public var up: Bool?

        public init(name: String, up: Bool?) {
            self.name = name
            self.up = up
        }
    }

    public var version: String
    public var networks: [Network]
    /// Oldest first.
    public var traffic: [Traffic]
    public var backends: [Backend]
    /// Telemetry rows waiting in memory and bytes on the disk spool; nil when no telemetry is shipped.
    public var telemetryQueueRows: Double?
    public var telemetrySpoolBytes: Double?
    /// Degraded-mode reasons, as `/readyz` gives them.
    public var degraded: [String]

    public init(
        version: String, networks: [Network], traffic: [Traffic], backends: [Backend], telemetryQueueRows: Double?, telemetrySpoolBytes: Double?,
        degraded: [String]
    ) {
        self.version = version
        self.networks = networks
        self.traffic = traffic
        self.backends = backends
        self.telemetryQueueRows = telemetryQueueRows
        self.telemetrySpoolBytes = telemetrySpoolBytes
        self.degraded = degraded
    }
}

/// The app's side of the status page: a snapshot gathered when a page is asked for.
public protocol StatusSource: Sendable {
    func snapshot() async -> StatusSnapshot
}

extension StatusSnapshot {
    /// What the public status page shows: each network's nodes by position (`node 1`…), never
    /// their addresses, and without their last errors (which may name hosts or URLs).
    public var publicView: StatusSnapshot {
        var view = self
        for index in view.networks.indices {
            for node in view.networks[index].nodes.indices {
                view.networks[index].nodes[node].name = "node \(node + 1)"
                view.networks[index].nodes[node].lastError = nil
            }
        }
        return view
    }
}
