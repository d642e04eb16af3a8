/// The limits verdict for one HTTP request.
public enum Admission: Sendable, Equatable {
    /// Admitted. `remaining` CU of the burst are left; the bucket is full after `resetAfter` ns.
    case admitted(limit: Int, remaining: Int, resetAfter: Int64)
    /// Refused by a rate limit; `kind` is `cu` or `requests`.
    case rateLimited(kind: String, limit: Int, retryAfter: Int64, resetAfter: Int64)
    /// The monthly quota is spent.
    case quotaExhausted(limit: Int64)
}

extension KeyContext {
    /// Charges `calls` requests and `cu` compute units against the key's limits and quota, all or
    /// nothing: a refusal by a later check refunds what earlier checks took.
    public func admit(calls: Int, cu: Int, now: Int64) -> Admission {
        if let shared {
            if shared.isLeased(now: now) { return admitLeased(shared, calls: calls, cu: cu, now: now) }
            if shared.fallbackBegins(now: now, window: burstWindow) {
                requestCell.drain(localRequestLimit, now: now)
                cuCell.drain(localCULimit, now: now)
            }
            let admission = admitLocally(calls: calls, cu: cu, now: now, requestLimit: localRequestLimit, cuLimit: localCULimit)
            switch admission {
            case .admitted: shared.admittedLocally(calls: Int64(calls), cu: Int64(cu), now: now, spec: leaseSpec)
            // Refused here, perhaps not by the cluster: ask (a lease in flight or a store away makes this a no-op).
            case .rateLimited: shared.refill(now: now, spec: leaseSpec)
            case .quotaExhausted: break
            }
            return admission
        }
        return admitLocally(calls: calls, cu: cu, now: now, requestLimit: requestLimit, cuLimit: cuLimit)
    }

    /// The plan's burst window in nanoseconds: a lease within it means the key was using its burst.
    private var burstWindow: Int64 { Int64(max(leaseSpec.requestTolerance, leaseSpec.cuTolerance) * 1_000) }

    /// Spends units this replica leased from the shared bucket: two atomic subtracts.
    private func admitLeased(_ shared: SharedKeyLimits, calls: Int, cu: Int, now: Int64) -> Admission {
        if let (kind, wait) = shared.spend(calls: Int64(calls), cu: Int64(cu), now: now, spec: leaseSpec) {
            let limit = kind == "cu" ? cuLimit.limit : requestLimit.limit
            return .rateLimited(kind: kind, limit: limit, retryAfter: wait, resetAfter: wait)
        }
        guard quota.charge(cu, limit: plan.monthlyCU) else {
            shared.requestTokens.add(Int64(calls), ordering: .relaxed)
            shared.cuTokens.add(Int64(cu), ordering: .relaxed)
            return .quotaExhausted(limit: plan.monthlyCU ?? 0)
        }
        let remaining = Int(max(0, min(Int64(cuLimit.limit), shared.cuTokens.load(ordering: .relaxed))))
        return .admitted(limit: cuLimit.limit, remaining: remaining, resetAfter: cuLimit.emissionInterval * Int64(cuLimit.limit - remaining))
    }

    private func admitLocally(calls: Int, cu: Int, now: Int64, requestLimit: GCRA, cuLimit: GCRA) -> Admission {
        if case .deny(let retryAfter, let resetAfter) = requestCell.acquire(requestLimit, cost: calls, now: now) {
            return .rateLimited(kind: "requests", limit: requestLimit.limit, retryAfter: retryAfter, resetAfter: resetAfter)
        }
        let cuDecision = cuCell.acquire(cuLimit, cost: cu, now: now)
        switch cuDecision {
        case .deny(let retryAfter, let resetAfter):
            requestCell.refund(requestLimit, cost: calls)
            return .rateLimited(kind: "cu", limit: cuLimit.limit, retryAfter: retryAfter, resetAfter: resetAfter)
        case .allow(_, let remaining, let resetAfter):
            guard quota.charge(cu, limit: plan.monthlyCU) else {
                requestCell.refund(requestLimit, cost: calls)
                cuCell.refund(cuLimit, cost: cu)
                return .quotaExhausted(limit: plan.monthlyCU ?? 0)
            }
            return .admitted(limit: cuLimit.limit, remaining: remaining, resetAfter: resetAfter)
        }
    }
}

extension Admission {
    /// One word for spans and logs: `admitted`, `rate_limited` or `quota_exhausted`.
    public var label: String {
        switch self {
        case .admitted: "admitted"
        case .rateLimited: "rate_limited"
        case .quotaExhausted: "quota_exhausted"
        }
    }
}
