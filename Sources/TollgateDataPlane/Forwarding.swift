import NIOCore
import NIOHTTP1
import TollgateCompression
import TollgateCore
import TollgateHTTP1
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
    /// The client's body (a sent transaction's hash, an error's id) and request ID: the head
    /// stays with the connection.
    let body: ByteBuffer
    let requestID: String
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
    /// A batch looked up in the response cache: its hits, and where its misses' answers go.
    var batchCache: BatchCache?
    /// The keys of the batch's calls it leads a single flight for (`BatchFlight`): each gets
    /// its answer object, or nil when the node did not give one.
    var batchLed: Set<[UInt8]> = []

    /// What goes to the pool for this plan: its calls, or `only` these of them (a batch's cache misses).
    static func upstreamRequest(
        _ plan: borrowing BatchPlan, only calls: [RPCCall]? = nil, request: GatewayRequest, head: HTTP1RequestHead, trace: RequestTrace?,
        writes: MethodSet, allocator: ByteBufferAllocator
    ) -> UpstreamRequest {
        // Untraced here: the client's trace context goes to the node as it came
        // (tracestate only travels with a trace context: one header scan for most requests).
        let traceparent = trace == nil ? head.string(head.traceparent) : nil
        let body = calls.map { RPCBatchWriter.forwardBody(spans: $0.map(\.span), of: request.body, allocator: allocator) }
            ?? plan.upstreamBody(request.body, allocator: allocator)
        let write = calls.map { $0.contains { writes.contains($0.method) } } ?? plan.containsWrite(writes)
        return UpstreamRequest(
            body: body, requestID: request.requestID,
            retryable: !write, methods: calls.map { .many($0.map(\.method)) } ?? plan.methods, traceparent: traceparent,
            tracestate: traceparent != nil || trace != nil ? head.string(head.tracestate) : nil, observer: trace)
    }

    /// `plan` is borrowed: an initializer's parameters are owned by default, and the plan
    /// (arrays and strings) was copied into the call and destroyed after it (`bench/retains`).
    init(_ plan: borrowing BatchPlan, request: GatewayRequest, facts: consuming RequestFacts, pool: any UpstreamPool) {
        body = request.body
        requestID = request.requestID
        self.facts = facts
        self.refused = plan.refused
        self.singleID = plan.singleID
        self.sentTransaction = plan.single.flatMap { $0.method == "eth_sendRawTransaction" ? $0 : nil }
        self.pool = pool
    }

    /// The pool answered: reply through `pipeline`. Mutating: the facts are completed in
    /// place and lent to the reply, never copied.
    mutating func answer(_ result: consuming Result<UpstreamResponse, UpstreamFailure>, pipeline: RequestPipeline) {
        // Whatever the outcome, no batch waiter is left waiting on this request.
        defer { releaseBatchFlight(pipeline) }
        switch consume result {
        case .success(let response):
            if let call = sentTransaction, let verdict = SentTransactionAnswer.verdict(response.body),
                let raw = RPCEnvelopeReader.firstStringParam(of: call, in: body), let hash = TransactionHash.of(rawHex: raw)
            {
                return answerSentTransaction(verdict, hash: hash, call: call, response: response, pipeline: pipeline)
            }
            var stored: GzipMember?
            if let pending = cache, let store = pipeline.gateway.responseCache, let settings = pipeline.gateway.cache, let chain = pool.chain {
                stored = CacheStage.store(pending, response: response, chain: chain, cache: store, settings: settings, now: pipeline.gateway.clock(),
                    compressor: pipeline.loop.answerCompressor(pipeline.gateway.settings.compression),
                    allocator: pipeline.allocator)
            }
            if leading, let key = cache?.key { pipeline.gateway.singleFlight?.finish(key, response) }
            if let batch = batchCache, response.status == .ok, let store = pipeline.gateway.responseCache, let settings = pipeline.gateway.cache,
                let chain = pool.chain
            {
                let now = pipeline.gateway.clock()
                let compressor = pipeline.loop.answerCompressor(pipeline.gateway.settings.compression)
                let flight = pipeline.gateway.singleFlight
                var led = batchLed
                let merged = batch.merge(response.body, request: body, allocator: pipeline.allocator) { pending, answer in
                    CacheStage.store(pending, answer: answer, nodeHead: response.nodeHead, chain: chain, cache: store, settings: settings, now: now,
                        compressor: compressor, allocator: pipeline.allocator)
                    if !led.isEmpty, led.remove(pending.key) != nil { flight?.finish(pending.key, BatchFlight.answer(answer, of: response)) }
                }
                batchLed = led
                if let merged {
                    var whole = response
                    whole.body = merged
                    return answer(whole, refused: refused, pipeline: pipeline)
                }
            }
            if let batch = batchCache, batch.hits > 0 {
                // The node failed the misses; the hits are still good.
                let why = response.status == .ok ? "the node's answer to this batch was not a JSON-RPC batch" : "upstream answered \(response.status.code)"
                facts.upstream = response.node
                facts.attempts = response.attempts
                facts.upstreamNanos = response.upstreamNanos
                return answerKeepingHits(batch, RPCError(code: RPCError.internalError, message: why), outcome: .status(Int(response.status.code)), pipeline: pipeline)
            }
            answer(consume response, refused: refused, stored: stored, pipeline: pipeline)
        case .failure(let failure):
            if leading, let key = cache?.key { pipeline.gateway.singleFlight?.finish(key, nil) }
            if let batch = batchCache, batch.hits > 0 {
                let (status, message) = Self.describe(failure)
                if case .timeout(_, let node) = failure { facts.upstream = node }
                return answerKeepingHits(batch, RPCError(code: RPCError.internalError, message: message), outcome: .status(Int(status.code)), pipeline: pipeline)
            }
            answer(failure, pipeline: pipeline)
        }
    }

    /// The batch's led keys the node's answer did not settle: their waiters go themselves.
    private mutating func releaseBatchFlight(_ pipeline: RequestPipeline) {
        guard !batchLed.isEmpty else { return }
        for key in batchLed { pipeline.gateway.singleFlight?.finish(key, nil) }
        batchLed = []
    }

    /// A batch with cache hits whose misses the node could not answer: 200, the hits and an
    /// error object per miss; the upstream outcome still records the failure.
    private mutating func answerKeepingHits(_ batch: BatchCache, _ error: RPCError, outcome: UpstreamOutcome, pipeline: RequestPipeline) {
        facts.upstreamOutcome = outcome
        let answer = batch.answerKeepingHits(error, request: body, allocator: pipeline.allocator)
        var reply = GatewayReply(status: .ok, body: RPCBatchWriter.merge(response: answer, extra: refused, allocator: pipeline.allocator) ?? answer)
        reply.refusal = "upstream failed a batch's cache misses: \(error.message)"
        pipeline.done(reply, facts)
    }

    static func describe(_ failure: UpstreamFailure) -> (HTTPResponseStatus, String) {
        switch failure {
        case .unavailable(let network): (.serviceUnavailable, "no healthy upstream for network '\(network)'")
        case .timeout(let network, _): (.gatewayTimeout, "upstream timeout on network '\(network)'")
        case .badGateway(let network, _): (.badGateway, "upstream error on network '\(network)'")
        }
    }

    /// `stored`: the gzip form the cache just made of this answer (the reply to a miss uses
    /// it rather than compressing the same bytes again).
    private mutating func answer(_ response: consuming UpstreamResponse, refused: [UInt8], stored: GzipMember? = nil, pipeline: RequestPipeline) {
        facts.upstream = response.node
        facts.attempts = response.attempts
        facts.upstreamNanos = response.upstreamNanos
        facts.upstreamOutcome = .ok
        facts.hedged = response.hedged
        let body = refused.isEmpty
            ? response.body : RPCBatchWriter.merge(response: response.body, extra: refused, allocator: pipeline.allocator) ?? response.body
        // The node's own gzip bytes serve a client that accepts gzip, if nothing was added.
        let gzipped: GzipForm? = !refused.isEmpty ? nil : response.gzipped.map { .bytes($0) } ?? stored.map { .member($0, id: $0.storedID) }
        // Made whole as a constant and handed over: a `var` set field by field was copied into
        // the call (`bench/retains`).
        let reply = GatewayReply(status: response.status, body: body,
            refusal: response.status.code >= 400 ? "upstream answered \(response.status.code)" : nil, gzipped: gzipped)
        pipeline.done(consume reply, facts)
    }

    /// "Already known", or "nonce too low" for a hash the pool confirms: the send succeeded.
    private func answerSentTransaction(
        _ verdict: SentTransactionAnswer.Verdict, hash: String, call: RPCCall, response: UpstreamResponse, pipeline: RequestPipeline
    ) {
        let this = self
        let succeed = {
            var known = response
            known.body = SentTransactionAnswer.success(hash: hash, id: call.id, request: this.body, allocator: pipeline.allocator)
            var forwarding = this
            forwarding.answer(known, refused: [], pipeline: pipeline)
        }
        guard verdict == .nonceTooLow else { return succeed() }
        let lookup = UpstreamRequest(
            body: SentTransactionAnswer.lookup(hash: hash, allocator: pipeline.allocator), requestID: requestID,
            methods: ["eth_getTransactionByHash"])
        pool.execute(lookup) { result in
            if case .success(let found) = result, let result = RPCResponseReader.answers(found.body)?.first?.result, result != "null" {
                succeed()
            } else {
                var forwarding = this
                forwarding.answer(response, refused: [], pipeline: pipeline)
            }
        }
    }

    private mutating func answer(_ failure: UpstreamFailure, pipeline: RequestPipeline) {
        let (status, message) = Self.describe(failure)
        if case .timeout(_, let node) = failure { facts.upstream = node }
        facts.upstreamOutcome = .status(Int(status.code))
        var reply = GatewayReply.error(status, RPCError(code: RPCError.internalError, message: message), id: singleID, request: body,
            allocator: pipeline.allocator)
        reply.refusal = "\(failure)"
        pipeline.done(reply, facts)
    }
}
