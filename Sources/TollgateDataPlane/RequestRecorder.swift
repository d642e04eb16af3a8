import Logging
import NIOHTTP1
import TollgateCore

/// Stage 8, record: one place that turns a finished request's facts into its metrics, its
/// trace's end, its telemetry row (buffered per loop, handed over in chunks) and, for refusals
/// and failures, one log line with the request ID. Runs after the reply is written, on the
/// connection's loop; stages before it only write facts.
struct RequestRecorder {
    let gateway: Gateway
    let loop: LoopState

    /// `bytesIn` is the request body as it came (compressed or not); `out` the answer's body,
    /// on the wire and before compression. Telemetry keeps the wire sizes.
    func record(_ reply: GatewayReply, facts: RequestFacts, request: GatewayRequest, bytesIn: Int, out: BodySize) {
        let bytesOut = out.wire
        let metrics = gateway.metrics
        let status = Int(reply.status.code)
        if let reason = facts.authFailure { metrics.authFailure(&loop.metricHandles, reason: reason) }
        if let result = facts.keyCache { metrics.keyCache(&loop.metricHandles, result: result) }
        if let kind = facts.rateLimited { metrics.rateLimited(&loop.metricHandles, plan: facts.plan, kind: kind) }
        if facts.chargedCU > 0 { metrics.computeUnits(&loop.metricHandles, network: facts.network, plan: facts.plan, cu: facts.chargedCU) }
        if let outcome = facts.upstreamOutcome {
            let ok = outcome == "ok"
            metrics.upstream(&loop.metricHandles, network: facts.network, node: facts.upstream ?? "none", outcome: outcome,
                nanos: ok ? facts.upstreamNanos : nil)
            if facts.hedged { metrics.hedged(&loop.metricHandles, network: facts.network) }
        }
        if facts.network != "-" {
            let total = gateway.clock() - request.startedAt
            metrics.bodies(&loop.metricHandles, network: facts.network,
                request: BodySize(coding: facts.requestCoding, wire: bytesIn, decoded: facts.decodedBytesIn ?? bytesIn), response: out)
            metrics.request(&loop.metricHandles, network: facts.network, method: facts.method, status: status,
                plan: facts.plan, totalNanos: total, overheadNanos: total - facts.upstreamNanos)
            if let result = facts.cacheResult {
                metrics.cache(&loop.metricHandles, network: facts.network, method: facts.method, result: result)
            } else if facts.attempts > 0 {
                metrics.cache(&loop.metricHandles, network: facts.network, method: facts.method, result: "bypass")
            }
            facts.trace?.finish(method: facts.method, status: status, keyPrefix: facts.keyPrefix, computeUnits: facts.computeUnits,
                rpcErrorCode: reply.rpcErrorCode)
            if gateway.telemetryEnabled {
                loop.record(RequestRecord(
                    timestampMillis: WallClock.nowMillis(), requestID: request.requestID, keyID: facts.keyID, keyPrefix: facts.keyPrefix,
                    network: facts.network, method: facts.method, batchSize: facts.batchSize, computeUnits: facts.computeUnits,
                    httpStatus: status, rpcErrorCode: reply.rpcErrorCode, cache: facts.cacheResult ?? "bypass", upstream: facts.upstream,
                    attempts: facts.attempts,
                    latencyMicros: total / 1000, upstreamLatencyMicros: facts.upstreamNanos / 1000, bytesIn: bytesIn, bytesOut: bytesOut,
                    clientIP: request.client), to: gateway.telemetry)
            }
        }
        if let refusal = reply.refusal, status != 429 {
            let level: Logger.Level = status >= 500 ? .warning : .info
            gateway.logger.log(level: level, "request refused", metadata: [
                "request_id": "\(request.requestID)", "status": "\(status)", "reason": "\(refusal)",
                "network": "\(facts.network)", "key": "\(facts.keyPrefix ?? "-")",
            ])
        }
    }

    /// Bytes that never became a request: no metrics by network or key, one log line.
    func recordUnframed(requestID: String, status: HTTPResponseStatus, message: String) {
        gateway.logger.info("request refused", metadata: [
            "request_id": "\(requestID)", "status": "\(status.code)", "reason": "\(message)", "network": "-", "key": "-",
        ])
    }
}
