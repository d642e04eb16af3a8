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
    public let cuLimit: GCRA
    public let requestLimit: GCRA
    public let cuCell: RateLimitCell
    public let requestCell: RateLimitCell
    public let quota: QuotaCell
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
        cuLimit = GCRA(ratePerSecond: plan.cuPerSecond, burstSeconds: plan.burstSeconds)
        requestLimit = GCRA(ratePerSecond: plan.requestsPerSecond, burstSeconds: plan.burstSeconds)
        cuCell = cells.cu
        requestCell = cells.requests
        quota = cells.quota
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

    public init(cu: RateLimitCell, requests: RateLimitCell, quota: QuotaCell, shared: SharedKeyLimits? = nil) {
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
