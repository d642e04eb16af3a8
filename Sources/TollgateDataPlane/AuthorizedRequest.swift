import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream
import Tracing

/// The request path after the key is known: policy, envelope, limits, upstream, reply.
struct AuthorizedRequest {
    let pipeline: RequestPipeline
    let context: KeyContext
    let request: GatewayRequest
    var facts: RequestFacts

    private var gateway: Gateway { pipeline.gateway }
    private var allocator: ByteBufferAllocator { pipeline.allocator }

    func run() {
        var facts = facts
        let record = context.record
        let origin = request.head.string(request.head.origin)
        if record.status == .revoked {
            return forbidden("API key revoked", facts)
        }
        if record.expiresAt != nil, context.isExpired(nowSeconds: WallClock.nowMillis() / 1000) {
            return forbidden("API key expired", facts)
        }
        guard context.permits(network: facts.network) else { return forbidden("network '\(facts.network)' not allowed for this key", facts) }
        guard context.permits(address: request.client) else { return forbidden("client address not allowed for this key", facts) }
        guard context.permits(origin: origin) else { return forbidden("origin not allowed for this key", facts) }
        facts.corsOrigin = origin
        let body = request.body
        guard body.readableBytes <= context.plan.maxBodyBytes else {
            return refuse(.payloadTooLarge, RPCError(code: RPCError.invalidRequest,
                message: "body of \(body.readableBytes) bytes exceeds the plan's \(context.plan.maxBodyBytes)"), facts)
        }

        let envelope: RPCEnvelope
        switch RPCEnvelopeReader.read(body) {
        case .success(let value): envelope = value
        case .failure(.parse(let message)):
            return refuse(.badRequest, RPCError(code: RPCError.parseError, message: "parse error: \(message)"), facts)
        case .failure(.invalidRequest(let message)):
            return refuse(.badRequest, RPCError(code: RPCError.invalidRequest, message: "invalid request: \(message)"), facts)
        }
        let items = envelope.items
        facts.batchSize = items.count
        if envelope.isBatch, items.count > context.plan.maxBatch {
            return refuse(.payloadTooLarge, RPCError(code: RPCError.invalidRequest,
                message: "batch of \(items.count) exceeds the plan's \(context.plan.maxBatch)"), facts)
        }

        // Per item: forward what the plan allows, answer the rest here.
        var forward: [RPCCall] = []
        forward.reserveCapacity(items.count)
        var refused: [UInt8] = []
        var anyDenied = false
        var cost = 0
        for item in items {
            switch item {
            case .call(let call):
                if context.permits(method: call.method) {
                    forward.append(call)
                    cost += gateway.computeUnits.cost(of: call.method)
                } else {
                    anyDenied = true
                    appendItemError(RPCError(code: RPCError.methodNotFound, message: "method '\(call.method)' is not allowed on this plan"), id: call.id, to: &refused)
                }
            case .invalid(let id, let reason):
                appendItemError(RPCError(code: RPCError.invalidRequest, message: "invalid request: \(reason)"), id: id, to: &refused)
            }
        }
        if envelope.isBatch {
            facts.method = "batch"
        } else if case .call(let call) = items[0] {
            facts.method = gateway.metrics.methodLabel(call.method)
        }
        facts.computeUnits = cost

        guard !forward.isEmpty else {
            if !envelope.isBatch, case .invalid(let id, let reason) = items[0] {
                return refuse(.badRequest, RPCError(code: RPCError.invalidRequest, message: "invalid request: \(reason)"), facts, id: id, body: body)
            }
            if !envelope.isBatch, case .call(let call) = items[0] {
                return refuse(.forbidden, RPCError(code: RPCError.methodNotFound, message: "method '\(call.method)' is not allowed on this plan"), facts, id: call.id, body: body)
            }
            var reply = GatewayReply(status: anyDenied ? .ok : .badRequest, body: bufferOf(RPCBatchWriter.array(refused)))
            reply.rpcErrorCode = anyDenied ? RPCError.methodNotFound : RPCError.invalidRequest
            reply.refusal = "no item of the batch may be forwarded"
            return pipeline.done(reply, withLimits(facts))
        }

        let limitsStart = facts.trace == nil ? nil : DefaultTracerClock.now
        let admission = context.admit(calls: forward.count, cu: cost, now: gateway.clock())
        if let trace = facts.trace, let limitsStart {
            trace.record("limits", start: limitsStart, end: DefaultTracerClock.now, attributes: [
                ("tollgate.compute_units", String(cost)), ("tollgate.admission", admission.label),
            ])
        }
        switch admission {
        case .admitted(let limit, let remaining, let resetAfter):
            facts.rateLimit = RateLimitValues(limit: limit, remaining: remaining, resetAfter: resetAfter)
        case .rateLimited(let kind, let limit, let retryAfter, let resetAfter):
            gateway.metrics.rateLimited(&pipeline.loop.metricHandles, plan: context.plan.name, kind: kind)
            let retryMillis = (retryAfter + 999_999) / 1_000_000
            var reply = GatewayReply.error(.tooManyRequests, RPCError(code: RPCError.limitExceeded,
                message: kind == "cu" ? "compute units per second exceeded" : "requests per second exceeded",
                data: [("retryAfterMs", String(retryMillis)), ("limit", String(limit))]),
                id: envelope.isBatch ? nil : forward[0].id, request: body, allocator: allocator)
            reply.headers.add(name: "Retry-After", value: String(max(1, (retryAfter + 999_999_999) / 1_000_000_000)))
            facts.rateLimit = RateLimitValues(limit: limit, remaining: 0, resetAfter: resetAfter)
            return pipeline.done(reply, facts)
        case .quotaExhausted(let limit):
            return refuse(.paymentRequired, RPCError(code: RPCError.limitExceeded,
                message: "monthly compute unit quota of \(limit) is spent"), facts, id: envelope.isBatch ? nil : forward[0].id, body: body)
        }
        gateway.metrics.computeUnits(&pipeline.loop.metricHandles, network: facts.network, plan: context.plan.name, cu: cost)

        guard let pool = pipeline.loop.pools[facts.network] else {
            return refuse(.serviceUnavailable, RPCError(code: RPCError.internalError, message: "no upstream pool for network '\(facts.network)'"), facts)
        }
        let upstreamBody = refused.isEmpty ? body : RPCBatchWriter.forwardBody(spans: forward.map(\.span), of: body, allocator: allocator)
        let retryable = !forward.contains { gateway.writeMethods.contains($0.method) }
        // Untraced here: the client's trace context goes to the node as it came.
        // (tracestate only travels with a trace context: one header scan for most requests).
        let head = request.head
        let traceparent = facts.trace == nil ? head.string(head.traceparent) : nil
        let upstream = UpstreamRequest(
            body: upstreamBody, requestID: request.requestID, retryable: retryable, methods: forward.map(\.method),
            traceparent: traceparent, tracestate: traceparent != nil || facts.trace != nil ? head.string(head.tracestate) : nil,
            observer: facts.trace)
        let singleID = envelope.isBatch ? nil : forward[0].id
        let sentTransaction = envelope.isBatch || forward[0].method != "eth_sendRawTransaction" ? nil : forward[0]
        pool.execute(upstream) { [facts] result in
            switch result {
            case .success(let response):
                if let call = sentTransaction, let verdict = SentTransactionAnswer.verdict(response.body),
                    let raw = RPCEnvelopeReader.firstStringParam(of: call, in: body), let hash = TransactionHash.of(rawHex: raw)
                {
                    answerSentTransaction(verdict, hash: hash, call: call, response: response, pool: pool, facts: facts)
                    return
                }
                answer(response, facts: facts, refused: refused)
            case .failure(let failure):
                answer(failure, facts: facts, id: singleID)
            }
        }
    }

    private func answer(_ response: UpstreamResponse, facts: RequestFacts, refused: [UInt8]) {
        var facts = facts
        facts.upstream = response.node
        facts.attempts = response.attempts
        facts.upstreamNanos = response.upstreamNanos
        gateway.metrics.upstream(&pipeline.loop.metricHandles, network: facts.network, node: response.node, outcome: "ok", nanos: response.upstreamNanos)
        if response.hedged { gateway.metrics.hedged(&pipeline.loop.metricHandles, network: facts.network) }
        var body = response.body
        if !refused.isEmpty {
            body = RPCBatchWriter.merge(response: response.body, extra: refused, allocator: allocator) ?? response.body
        }
        var reply = GatewayReply(status: response.status, body: body)
        if response.status.code >= 400 { reply.refusal = "upstream answered \(response.status.code)" }
        pipeline.done(reply, facts)
    }

    /// "Already known", or "nonce too low" for a hash the pool confirms: the send succeeded.
    private func answerSentTransaction(
        _ verdict: SentTransactionAnswer.Verdict, hash: String, call: RPCCall, response: UpstreamResponse, pool: any UpstreamPool,
        facts: RequestFacts
    ) {
        let succeed = {
            var known = response
            known.body = SentTransactionAnswer.success(hash: hash, id: call.id, request: request.body, allocator: allocator)
            answer(known, facts: facts, refused: [])
        }
        guard verdict == .nonceTooLow else { return succeed() }
        let lookup = UpstreamRequest(
            body: SentTransactionAnswer.lookup(hash: hash, allocator: allocator), requestID: request.requestID,
            methods: ["eth_getTransactionByHash"])
        pool.execute(lookup) { result in
            if case .success(let found) = result, let result = RPCResponseReader.answers(found.body)?.first?.result, result != "null" {
                succeed()
            } else {
                answer(response, facts: facts, refused: [])
            }
        }
    }

    private func answer(_ failure: UpstreamFailure, facts: RequestFacts, id: Range<Int>?) {
        var facts = facts
        let (status, message): (HTTPResponseStatus, String)
        switch failure {
        case .unavailable(let network):
            (status, message) = (.serviceUnavailable, "no healthy upstream for network '\(network)'")
        case .timeout(let network, let node):
            facts.upstream = node
            (status, message) = (.gatewayTimeout, "upstream timeout on network '\(network)'")
        case .badGateway(let network, _):
            (status, message) = (.badGateway, "upstream error on network '\(network)'")
        }
        gateway.metrics.upstream(&pipeline.loop.metricHandles, network: facts.network, node: facts.upstream ?? "none", outcome: String(status.code), nanos: nil)
        var reply = GatewayReply.error(status, RPCError(code: RPCError.internalError, message: message), id: id, request: request.body, allocator: allocator)
        reply.refusal = "\(failure)"
        pipeline.done(reply, facts)
    }

    /// A refusal after authentication: the client still learns where its limits stand.
    private func refuse(
        _ status: HTTPResponseStatus, _ error: RPCError, _ facts: RequestFacts, id: Range<Int>? = nil, body: ByteBuffer? = nil
    ) {
        pipeline.fail(status, error, withLimits(facts), id: id, body: body)
    }

    /// The key's CU limit state, read without charging it (a zero-cost acquire).
    private func withLimits(_ facts: RequestFacts) -> RequestFacts {
        var facts = facts
        switch context.cuCell.acquire(context.cuLimit, cost: 0, now: gateway.clock()) {
        case .allow(_, let remaining, let resetAfter):
            facts.rateLimit = RateLimitValues(limit: context.cuLimit.limit, remaining: remaining, resetAfter: resetAfter)
        case .deny(_, let resetAfter):
            facts.rateLimit = RateLimitValues(limit: context.cuLimit.limit, remaining: 0, resetAfter: resetAfter)
        }
        return facts
    }

    private func forbidden(_ message: String, _ facts: RequestFacts) {
        gateway.metrics.authFailure(&pipeline.loop.metricHandles, reason: "forbidden")
        return refuse(.forbidden, RPCError(code: RPCError.forbidden, message: message), facts)
    }

    private func appendItemError(_ error: RPCError, id: Range<Int>?, to output: inout [UInt8]) {
        if !output.isEmpty { output.append(UInt8(ascii: ",")) }
        RPCErrorWriter.append(error, id: id, body: request.body, to: &output)
    }

    private func bufferOf(_ bytes: [UInt8]) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return buffer
    }
}
