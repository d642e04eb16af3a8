import NIOCore
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// Stages 5b–6 for a batch the in-process cache answered in part: single flight
/// (`BatchFlight`), then the shared tier for what is still missing, then one trip upstream
/// with only the calls nobody answered.
extension RequestPipeline {
    func forward(_ batch: BatchCache, plan: BatchPlan, pool: any UpstreamPool, request: GatewayRequest, facts: consuming RequestFacts) {
        guard let flight = gateway.singleFlight, batch.cacheable > batch.hits else {
            return forward(batch, led: [], plan: plan, pool: pool, request: request, facts: facts)
        }
        let entry = BatchFlight.enter(batch, flight: flight, request: request.body, allocator: allocator, on: eventLoop)
        guard let wait = entry.wait else {
            return forward(batch, led: entry.led, plan: plan, pool: pool, request: request, facts: facts)
        }
        wait.start(maxWait: flight.maxWait) { [facts] batch in
            let led = BatchFlight.leadRest(batch, flight: flight)
            self.forward(batch, led: led, plan: plan, pool: pool, request: request, facts: facts)
        }
    }

    /// `led`: the keys this batch leads a single flight for; every one is finished by the
    /// answer this batch gets (or, when nothing goes upstream, here).
    private func forward(
        _ batch: BatchCache, led: Set<[UInt8]>, plan: BatchPlan, pool: any UpstreamPool, request: GatewayRequest, facts: consuming RequestFacts
    ) {
        var forwarding = Forwarding(plan, request: request, facts: facts, pool: pool)
        forwarding.batchCache = batch
        forwarding.batchLed = led
        if batch.hits == batch.slots.count {
            return answerFromHits(batch, plan: plan, forwarding: forwarding)
        }
        // The cacheable misses ask the shared tier first; its answer decides what goes upstream.
        if batch.cacheable > batch.hits, let shared = gateway.cache?.shared, let chain = pool.chain, shared.mayAsk(now: gateway.clock()) {
            return askShared(shared, batch: batch, plan: plan, chain: chain, request: request, forwarding: forwarding)
        }
        send(batch, plan: plan, request: request, forwarding: forwarding)
    }

    /// Every call answered here (the cache, the shared tier, other requests' trips).
    private func answerFromHits(_ batch: BatchCache, plan: BatchPlan, forwarding: Forwarding) {
        for key in forwarding.batchLed { gateway.singleFlight?.finish(key, nil) }
        var facts = forwarding.facts
        facts.cacheResult = batch.result
        let answer = batch.answer(allocator: allocator)
        done(GatewayReply(status: .ok, body: RPCBatchWriter.merge(response: answer, extra: plan.refused, allocator: allocator) ?? answer), facts)
    }

    /// Only the misses go upstream; reads about the moving head to nodes at the head.
    private func send(_ batch: BatchCache, plan: BatchPlan, request: GatewayRequest, forwarding: Forwarding) {
        var forwarding = forwarding
        forwarding.batchCache = batch
        forwarding.facts.cacheResult = batch.result
        var upstream = Forwarding.upstreamRequest(plan, only: batch.hits > 0 ? batch.misses : nil, request: request, head: request.head,
            trace: forwarding.facts.trace, writes: gateway.writeMethods, allocator: allocator)
        upstream.atHead = batch.asksAboutTheHead
        forwarding.pool.execute(upstream, responder: connection.awaitUpstream(forwarding))
    }

    /// A batch's in-process misses ask the shared cache, all at once, before the node: what it
    /// holds is answered here (and handed to this batch's single-flight waiters), only the
    /// rest goes upstream.
    private func askShared(
        _ shared: any SharedResponseCache, batch: BatchCache, plan: BatchPlan, chain: ChainTracker, request: GatewayRequest, forwarding: Forwarding
    ) {
        let network = forwarding.facts.network
        let timeout = TimeAmount.nanoseconds(gateway.cache!.sharedTimeout.nanoseconds)
        SharedCacheLookup.fetchMany(shared, network: network, keys: batch.sharedKeys, timeout: timeout, on: eventLoop) { entries in
            var batch = batch
            var forwarding = forwarding
            if let cache = self.gateway.responseCache, let settings = self.gateway.cache {
                _ = batch.adopt(entries, body: request.body, chain: chain, cache: cache, settings: settings, now: self.gateway.clock(),
                    allocator: self.allocator)
                { key, entry in
                    guard forwarding.batchLed.remove(key) != nil else { return }
                    self.gateway.singleFlight?.finish(key, SharedCacheLookup.sharedAnswer(entry))
                }
            }
            if batch.hits == batch.slots.count {
                forwarding.batchCache = batch
                return self.answerFromHits(batch, plan: plan, forwarding: forwarding)
            }
            self.send(batch, plan: plan, request: request, forwarding: forwarding)
        }
    }
}
