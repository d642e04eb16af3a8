import Logging
import NIOHTTP1
import TollgateCore

/// Stage 8, record: one place that turns a finished request's facts into its metrics, its
/// trace's end, its telemetry row (buffered per loop, handed over in chunks) and, for refusals
/// and failures, one log line with the request ID. Runs after the reply is written, on the
/// connection's loop; stages before it only write facts.
///
/// Static functions that borrow the gateway and the loop: a recorder value holding them was
/// made per request, and retained and released both (`bench/retains`).
enum RequestRecorder {
    /// `bytesIn` is the request body as it came (compressed or not); `out` the answer's body,
    /// on the wire and before compression. Telemetry keeps the wire sizes.
    static func record(
        _ reply: GatewayReply, facts: RequestFacts, request: GatewayRequest, bytesIn: Int, out: BodySize, gateway: Gateway, loop: LoopState
    ) {
        let bytesOut = out.wire
        let metrics = gateway.metrics
        let status = Int(reply.status.code)
        if let reason = facts.authFailure { metrics.authFailure(&loop.metricHandles, reason: reason.label) }
        if let kind = facts.rateLimited { metrics.rateLimited(&loop.metricHandles, plan: facts.plan, kind: kind.label) }
        if facts.upstreamOutcome != nil, facts.hedged { metrics.hedged(&loop.metricHandles, network: facts.network) }
        guard facts.network != "-" else {
            // Refused before its network was known (so never forwarded): no request, body,
            // cache or upstream metrics.
            if let result = facts.keyCache { metrics.keyCache(&loop.metricHandles, result: result.label) }
            return log(reply, facts: facts, request: request, status: status, gateway: gateway)
        }
        let total = gateway.clock() - request.startedAt
        metrics.withHandles(
            &loop.metricHandles, network: facts.network, method: facts.method, status: status, plan: facts.plan,
            upstream: facts.upstreamOutcome == nil ? nil : facts.upstream ?? "none", outcome: facts.upstreamOutcome,
            cache: facts.cacheResult ?? (facts.attempts > 0 ? .bypass : nil), keyCache: facts.keyCache,
            requestCoding: facts.requestCoding, responseCoding: out.coding
        ) { (set: inout RequestMetricSet) in
            set.keyCache?.increment()
            if facts.chargedCU > 0 { set.computeUnits.increment(by: facts.chargedCU) }
            set.upstream?.increment()
            set.upstreamDuration?.recordNanoseconds(facts.upstreamNanos)
            set.requestBytes.wire.increment(by: bytesIn)
            set.requestBytes.decoded.increment(by: facts.decodedBytesIn ?? bytesIn)
            set.responseBytes.wire.increment(by: out.wire)
            set.responseBytes.decoded.increment(by: out.decoded)
            set.requests.increment()
            set.duration.recordNanoseconds(total)
            set.overhead.recordNanoseconds(max(0, total - facts.upstreamNanos))
            set.cache?.increment()
        }
        facts.trace?.finish(method: facts.method, status: status, keyPrefix: facts.keyPrefix, computeUnits: facts.computeUnits,
            rpcErrorCode: reply.rpcErrorCode)
        if gateway.telemetryEnabled {
            loop.record(RequestRecord(
                timestampMillis: WallClock.nowMillis(), requestID: request.requestID, keyID: facts.keyID, keyPrefix: facts.keyPrefix,
                network: facts.network, method: facts.method, batchSize: facts.batchSize, computeUnits: facts.computeUnits,
                httpStatus: status, rpcErrorCode: reply.rpcErrorCode, cache: (facts.cacheResult ?? .bypass).label, upstream: facts.upstream,
                attempts: facts.attempts,
                latencyMicros: total / 1000, upstreamLatencyMicros: facts.upstreamNanos / 1000, bytesIn: bytesIn, bytesOut: bytesOut,
                clientIP: request.client), to: gateway.telemetry)
        }
        log(reply, facts: facts, request: request, status: status, gateway: gateway)
    }

    /// Refusals and failures (but not 429s, which come in floods) get one line with the request ID.
    private static func log(_ reply: GatewayReply, facts: RequestFacts, request: GatewayRequest, status: Int, gateway: Gateway) {
        if let refusal = reply.refusal, status != 429 {
            let level: Logger.Level = status >= 500 ? .warning : .info
            gateway.logger.log(level: level, "request refused", metadata: [
                "request_id": "\(request.requestID)", "status": "\(status)", "reason": "\(refusal)",
                "network": "\(facts.network)", "key": "\(facts.keyPrefix ?? "-")",
            ])
        }
    }

    /// Bytes that never became a request: no metrics by network or key, one log line.
    static func recordUnframed(requestID: String, status: HTTPResponseStatus, message: String, gateway: Gateway) {
        gateway.logger.info("request refused", metadata: [
            "request_id": "\(requestID)", "status": "\(status.code)", "reason": "\(message)", "network": "-", "key": "-",
        ])
    }
}
