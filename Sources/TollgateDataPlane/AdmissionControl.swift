import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateJSONRPC
import Tracing

/// Stage 5, admission: the key's limits, charged for the calls that will be forwarded. Rate
/// (CU and requests per second, in process or leased from the cluster) and the monthly quota
/// (`KeyContext.admit`); a refusal is 429 with `Retry-After`, or 402 for a spent quota.
enum AdmissionControl {
    /// Charges the key for `calls` forwarded calls costing `cost` CU; nil when the request may
    /// go on (facts then carry the `RateLimit-*` values and the units charged), else the
    /// refusal's reply, echoing `singleID`. The plan's figures, not the plan: lent from the
    /// caller's `var`, the plan was copied into the call (`bench/copies`).
    static func admit(
        _ context: KeyContext, calls: Int, cost: Int, singleID: Range<Int>?, request: GatewayRequest, now: Int64,
        facts: inout RequestFacts, allocator: ByteBufferAllocator
    ) -> GatewayReply? {
        let limitsStart = facts.trace == nil ? nil : DefaultTracerClock.now
        let admission = context.admit(calls: calls, cu: cost, now: now)
        if let trace = facts.trace, let limitsStart {
            trace.record("limits", start: limitsStart, end: DefaultTracerClock.now, attributes: [
                ("tollgate.compute_units", String(cost)), ("tollgate.admission", admission.label),
            ])
        }
        switch admission {
        case .admitted(let limit, let remaining, let resetAfter):
            facts.rateLimit = RateLimitValues(limit: limit, remaining: remaining, resetAfter: resetAfter)
            facts.chargedCU = cost
            return nil
        case .rateLimited(let kind, let limit, let retryAfter, let resetAfter):
            facts.rateLimited = RateLimitKind(kind)
            let retryMillis = (retryAfter + 999_999) / 1_000_000
            var reply = GatewayReply.error(.tooManyRequests, RPCError(code: RPCError.limitExceeded,
                message: kind == "cu" ? "compute units per second exceeded" : "requests per second exceeded",
                data: [("retryAfterMs", String(retryMillis)), ("limit", String(limit))]),
                id: singleID, request: request.body, allocator: allocator)
            reply.headers.add(name: "Retry-After", value: String(max(1, (retryAfter + 999_999_999) / 1_000_000_000)))
            facts.rateLimit = RateLimitValues(limit: limit, remaining: 0, resetAfter: resetAfter)
            return reply
        case .quotaExhausted(let limit):
            facts.rateLimit = limits(context, now: now)
            return .error(.paymentRequired, RPCError(code: RPCError.limitExceeded, message: "monthly compute unit quota of \(limit) is spent"),
                id: singleID, request: request.body, allocator: allocator)
        }
    }

    /// The key's CU limit state, read without charging it (a zero-cost acquire): a refused
    /// request still tells the client where its limits stand.
    static func limits(_ context: KeyContext, now: Int64) -> RateLimitValues {
        switch context.cuCell.acquire(context.cuLimit, cost: 0, now: now) {
        case .allow(_, let remaining, let resetAfter):
            RateLimitValues(limit: context.cuLimit.limit, remaining: remaining, resetAfter: resetAfter)
        case .deny(_, let resetAfter):
            RateLimitValues(limit: context.cuLimit.limit, remaining: 0, resetAfter: resetAfter)
        }
    }
}
