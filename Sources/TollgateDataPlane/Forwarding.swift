import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// Stage 6, forward: the planned calls to the network's pool on this loop, and the pool's
/// answer made into the client's: the node's bytes untouched (with the items answered here
/// spliced into a batch), or 503/504/502 for a pool that could not answer. A sent
/// transaction's "already known" and "nonce too low" answers are checked against the pool.
///
/// While the pool works, the connection holds this value and is the pool's responder: a
/// request waits on its node without allocating a callback.
struct Forwarding {
    let request: GatewayRequest
    var facts: RequestFacts
    let refused: [UInt8]
    let singleID: Range<Int>?
    /// The single call, when it is `eth_sendRawTransaction`.
    let sentTransaction: RPCCall?
    let pool: any UpstreamPool
    /// Where the answer goes in the response cache, when it may be stored.
    var cache: CacheStage.Pending?
    /// This request leads a single flight for `cache`'s key: its answer goes to the waiters.
    var leading = false

    /// What goes to the pool for this plan.
    static func upstreamRequest(
        _ plan: BatchPlan, request: GatewayRequest, facts: RequestFacts, writes: Set<String>, allocator: ByteBufferAllocator
    ) -> UpstreamRequest {
        // Untraced here: the client's trace context goes to the node as it came
        // (tracestate only travels with a trace context: one header scan for most requests).
        let head = request.head
        let traceparent = facts.trace == nil ? head.string(head.traceparent) : nil
        return UpstreamRequest(
            body: plan.upstreamBody(request.body, allocator: allocator), requestID: request.requestID,
            retryable: !plan.containsWrite(writes), methods: plan.methods, traceparent: traceparent,
            tracestate: traceparent != nil || facts.trace != nil ? head.string(head.tracestate) : nil, observer: facts.trace)
    }

    init(_ plan: BatchPlan, request: GatewayRequest, facts: RequestFacts, pool: any UpstreamPool) {
        self.request = request
        self.facts = facts
        self.refused = plan.refused
        self.singleID = plan.singleID
        self.sentTransaction = plan.single.flatMap { $0.method == "eth_sendRawTransaction" ? $0 : nil }
        self.pool = pool
    }

    /// The pool answered: reply through `pipeline`.
    func answer(_ result: Result<UpstreamResponse, UpstreamFailure>, pipeline: RequestPipeline) {
        switch result {
        case .success(let response):
            if let call = sentTransaction, let verdict = SentTransactionAnswer.verdict(response.body),
                let raw = RPCEnvelopeReader.firstStringParam(of: call, in: request.body), let hash = TransactionHash.of(rawHex: raw)
            {
                return answerSentTransaction(verdict, hash: hash, call: call, response: response, pipeline: pipeline)
            }
            if let pending = cache, let store = pipeline.gateway.responseCache, let settings = pipeline.gateway.cache, let chain = pool.chain {
                CacheStage.store(pending, response: response, chain: chain, cache: store, settings: settings, now: pipeline.gateway.clock(),
                    allocator: pipeline.allocator)
            }
            if leading, let key = cache?.key { pipeline.gateway.singleFlight?.finish(key, response) }
            answer(response, refused: refused, pipeline: pipeline)
        case .failure(let failure):
            if leading, let key = cache?.key { pipeline.gateway.singleFlight?.finish(key, nil) }
            answer(failure, pipeline: pipeline)
        }
    }

    private func answer(_ response: UpstreamResponse, refused: [UInt8], pipeline: RequestPipeline) {
        var facts = facts
        facts.upstream = response.node
        facts.attempts = response.attempts
        facts.upstreamNanos = response.upstreamNanos
        facts.upstreamOutcome = "ok"
        facts.hedged = response.hedged
        var body = response.body
        if !refused.isEmpty {
            body = RPCBatchWriter.merge(response: response.body, extra: refused, allocator: pipeline.allocator) ?? response.body
        }
        var reply = GatewayReply(status: response.status, body: body)
        if response.status.code >= 400 { reply.refusal = "upstream answered \(response.status.code)" }
        pipeline.done(reply, facts)
    }

    /// "Already known", or "nonce too low" for a hash the pool confirms: the send succeeded.
    private func answerSentTransaction(
        _ verdict: SentTransactionAnswer.Verdict, hash: String, call: RPCCall, response: UpstreamResponse, pipeline: RequestPipeline
    ) {
        let succeed = {
            var known = response
            known.body = SentTransactionAnswer.success(hash: hash, id: call.id, request: request.body, allocator: pipeline.allocator)
            answer(known, refused: [], pipeline: pipeline)
        }
        guard verdict == .nonceTooLow else { return succeed() }
        let lookup = UpstreamRequest(
            body: SentTransactionAnswer.lookup(hash: hash, allocator: pipeline.allocator), requestID: request.requestID,
            methods: ["eth_getTransactionByHash"])
        pool.execute(lookup) { result in
            if case .success(let found) = result, let result = RPCResponseReader.answers(found.body)?.first?.result, result != "null" {
                succeed()
            } else {
                answer(response, refused: [], pipeline: pipeline)
            }
        }
    }

    private func answer(_ failure: UpstreamFailure, pipeline: RequestPipeline) {
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
        facts.upstreamOutcome = String(status.code)
        var reply = GatewayReply.error(status, RPCError(code: RPCError.internalError, message: message), id: singleID, request: request.body,
            allocator: pipeline.allocator)
        reply.refusal = "\(failure)"
        pipeline.done(reply, facts)
    }
}
