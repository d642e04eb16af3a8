/// Everything the hot path needs about an authenticated key, resolved once per cache fill.
///
/// Shared by all event loops: the limiter and quota cells inside are the same objects for as
/// long as the process runs, so refreshing a key's record never resets its limits.
public final class KeyContext: Sendable {
    public let record: APIKeyRecord
    public let plan: Plan
    /// Plan methods narrowed by the key's own allow list.
    public let keyMethods: MethodMatcher
    public let allowedIPs: [CIDR]
    public let allowedOrigins: Set<String>
    /// nil when the key may touch any contract (the params are then never read for it).
    public let allowedContracts: Set<String>?
    /// Lowercased substrings; empty means any user agent.
    public let allowedUserAgents: [[UInt8]]
    public let cuLimit: GCRA
    public let requestLimit: GCRA
    public let cuCell: RateLimitCell
    public let requestCell: RateLimitCell
    public let quota: QuotaCell
    /// Open connections on this key (`Plan.maxConnections`), per replica.
    public let connections: KeyConnectionCount
    /// Open WebSocket connections and live subscriptions on this key, per replica.
    public let webSockets: KeyConnectionCount
    public let subscriptions: KeyConnectionCount
    /// Cluster-wide limits through leases; nil in the embedded shape.
    public let shared: SharedKeyLimits?
    public let leaseSpec: LeaseSpec
    /// This replica's share of the plan, enforced on its own when it holds no lease.
    public let localCULimit: GCRA
    public let localRequestLimit: GCRA

    public init(record: APIKeyRecord, plan: Plan, cells: KeyCells, leaseSeconds: Double = 0.05) {
        self.record = record
        self.plan = plan
        keyMethods = MethodMatcher(record.allowedMethods)
        allowedIPs = record.allowedIPs.compactMap(CIDR.init)
        allowedOrigins = Set(record.allowedOrigins.map { $0.lowercased() })
        allowedContracts = record.allowedContracts.isEmpty ? nil : Set(record.allowedContracts.map { $0.lowercased() })
        allowedUserAgents = record.allowedUserAgents.map { Array($0.lowercased().utf8) }
        cuLimit = GCRA(ratePerSecond: plan.cuPerSecond, burstSeconds: plan.burstSeconds)
        requestLimit = GCRA(ratePerSecond: plan.requestsPerSecond, burstSeconds: plan.burstSeconds)
        cuCell = cells.cu
        requestCell = cells.requests
        quota = cells.quota
        connections = cells.connections
        webSockets = cells.webSockets
        subscriptions = cells.subscriptions
        shared = cells.shared
        leaseSpec = LeaseSpec(plan: plan, leaseSeconds: leaseSeconds)
        let share = cells.shared.map { min(1, max(0.0001, $0.limiter.localShare)) } ?? 1
        localCULimit = share == 1 ? cuLimit : GCRA(ratePerSecond: Int((Double(plan.cuPerSecond) * share).rounded(.up)), burstSeconds: plan.burstSeconds)
        localRequestLimit = share == 1 ? requestLimit
            : GCRA(ratePerSecond: Int((Double(plan.requestsPerSecond) * share).rounded(.up)), burstSeconds: plan.burstSeconds)
    }

    public func permits(method: String) -> Bool {
        plan.methods.permits(method) && (keyMethods.isEmpty || keyMethods.matches(method))
    }

    public func permits(network: String) -> Bool {
        (plan.networks.isEmpty || plan.networks.contains(network))
            && (record.allowedNetworks.isEmpty || record.allowedNetworks.contains(network))
    }

    public func permits(address: IPAddress?) -> Bool {
        guard !allowedIPs.isEmpty else { return true }
        guard let address else { return false }
        return allowedIPs.contains { $0.contains(address) }
    }

    /// `origin` is the request's Origin header; requests without one (servers) pass.
    public func permits(origin: String?) -> Bool {
        guard !allowedOrigins.isEmpty, let origin else { return true }
        return allowedOrigins.contains(origin.lowercased())
    }

    /// `userAgent` is the request's User-Agent; with a list set, a request without one fails.
    public func permits(userAgent: String?) -> Bool {
        guard !allowedUserAgents.isEmpty else { return true }
        guard var userAgent else { return false }
        return userAgent.withUTF8 { utf8 in
            allowedUserAgents.contains { Self.contains(UnsafeRawBufferPointer(utf8), lowercasedNeedle: $0) }
        }
    }

    /// Substring search ignoring ASCII case (user agents are short; nothing cleverer is needed).
    static func contains(_ haystack: UnsafeRawBufferPointer, lowercasedNeedle needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        outer: for start in 0...(haystack.count - needle.count) {
            for (offset, byte) in needle.enumerated() {
                var candidate = haystack[start + offset]
                if candidate >= 0x41 && candidate <= 0x5A { candidate |= 0x20 }
                if candidate != byte { continue outer }
            }
            return true
        }
        return false
    }

    public func isExpired(nowSeconds: Int64) -> Bool {
        if let expiresAt = record.expiresAt { return nowSeconds >= expiresAt }
        return false
    }
}

/// The per-key mutable state that outlives any one cache entry.
public struct KeyCells: Sendable {
    public let cu: RateLimitCell
    public let requests: RateLimitCell
    public let quota: QuotaCell
    public let shared: SharedKeyLimits?
    public let connections: KeyConnectionCount
    public let webSockets: KeyConnectionCount
    public let subscriptions: KeyConnectionCount

    public init(
        cu: RateLimitCell, requests: RateLimitCell, quota: QuotaCell, shared: SharedKeyLimits? = nil,
        connections: KeyConnectionCount = KeyConnectionCount(), webSockets: KeyConnectionCount = KeyConnectionCount(),
        subscriptions: KeyConnectionCount = KeyConnectionCount()
    ) {
        self.connections = connections
        self.webSockets = webSockets
        self.subscriptions = subscriptions
        self.cu = cu
        self.requests = requests
        self.quota = quota
        self.shared = shared
    }
}

/// What authenticating a key hash came to.
public enum KeyLookup: Sendable {
    case found(KeyContext)
    case notFound
    /// The key exists but names a plan the config does not declare.
    case unknownPlan(String)
    /// The store could not answer.
    case unavailable
}
