import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC
import TollgateUpstream
import Tracing

/// The connection a request came on, as the pipeline sees it: where the outcome goes, and who
/// holds a forwarded request while the pool works (and hears the pool's answer).
protocol RequestResponder: AnyObject {
    /// Called exactly once per request, on the loop, with the reply and the facts behind it.
    func respond(_ reply: consuming GatewayReply, facts: borrowing RequestFacts)
    /// Keeps `forwarding` until the pool answers; returns the responder to give the pool.
    /// Consuming: the request's state moves into the connection rather than being copied.
    func awaitUpstream(_ forwarding: consuming Forwarding) -> any UpstreamResponder
    /// The same for a `Forwarding` made from these parts, for the connection to make where it
    /// keeps it (`GatewayHandler`: in place, one copy of it where the other way makes three).
    func awaitUpstream(
        _ plan: borrowing BatchPlan, request: GatewayRequest, facts: inout RequestFacts, pool: any UpstreamPool
    ) -> any UpstreamResponder
    /// Holds one of the key's connection slots for this connection (`Plan.maxConnections`);
    /// false when all are taken, and the connection then closes after this reply.
    func holdSlot(of connections: KeyConnectionCount, max: Int) -> Bool
    /// A WebSocket hand-over the key and plan allow: the connection becomes a `WebSocketSession`.
    func acceptWebSocket(_ context: KeyContext, request: GatewayRequest, facts: RequestFacts, pipeline: RequestPipeline)
    /// `eth_subscribe` / `eth_unsubscribe` over a WebSocket, once admitted like any call.
    func subscription(_ call: RPCCall, body: ByteBuffer, key: KeyContext, facts: RequestFacts, pipeline: RequestPipeline)
    /// A batch's subscription calls (admitted with the batch): their answers, comma-joined, to
    /// splice into the batch's answer. New subscriptions start feeding once that answer is out.
    func subscriptions(_ calls: [RPCCall], body: ByteBuffer, key: KeyContext) -> [UInt8]
}

extension RequestResponder {
    func awaitUpstream(
        _ plan: borrowing BatchPlan, request: GatewayRequest, facts: inout RequestFacts, pool: any UpstreamPool
    ) -> any UpstreamResponder {
        awaitUpstream(Forwarding(plan, request: request, facts: facts.take(), pool: pool))
    }

    func acceptWebSocket(_ context: KeyContext, request: GatewayRequest, facts: RequestFacts, pipeline: RequestPipeline) {
        pipeline.refuse(Refusal(.badRequest, RPCError.invalidRequest, "already a WebSocket"), facts, context: context)
    }

    func subscription(_ call: RPCCall, body: ByteBuffer, key: KeyContext, facts: RequestFacts, pipeline: RequestPipeline) {
        pipeline.refuse(Refusal(.badRequest, RPCError.methodNotFound, "\(call.method) needs a WebSocket: connect to ws://…/v1/{network}/{key}",
            id: call.id), facts, context: key, echo: body)
    }

    /// Not a WebSocket: `BatchPlan` refuses these in place, so this is never asked.
    func subscriptions(_ calls: [RPCCall], body: ByteBuffer, key: KeyContext) -> [UInt8] { [] }
}

/// The request path, stage by stage, on the connection's event loop:
///
///  1. `Intake`: request ID, client address, route, method, network (pure)
///  2. `Authentication`: the key from path or header, this loop's copy, the directory, the store
///  3. `KeyPolicy`: status, expiry, network, address, origin, user agent, body and batch size (pure)
///  4. `BatchPlan`: which calls go upstream, which are answered here (methods, contracts), their cost (pure)
///  5. `AdmissionControl`: rate limits and quota; then `CacheStage` (when `cache.enabled`):
///     `eth_blockNumber` from the chain state, hits from the in-process `ResponseCacheStore`;
///     for a batch, `BatchCache` (hits answered here, only the misses forwarded); for a
///     single call's miss, `SharedCacheLookup` (Redis, when `cache.redis`)
///  6. `Forwarding`: the network's pool, and its answer made into the client's (stored in the
///     cache when the policy allows)
///  7. `Responder`: the reply's bytes (in `GatewayHandler`, which owns the channel)
///  8. `RequestRecorder`: metrics, telemetry row, trace, log line, from the facts
///
/// Everything is synchronous except a key-cache miss (which waits on the store and comes back
/// to the loop) and the pool's exchange. The pipeline is a value made per request; it
/// allocates nothing of its own.
struct RequestPipeline {
    let gateway: Gateway
    let loop: LoopState
    let allocator: ByteBufferAllocator
    let connection: any RequestResponder

    var eventLoop: any EventLoop { loop.eventLoop }

    func handle(_ request: GatewayRequest) {
        var facts = RequestFacts()
        handle(request, facts: &facts)
    }

    /// The facts are lent from stage to stage (`inout`) up to the pool, where they move into
    /// the `Forwarding`: passed on by value, the compiler copied them (some 250 bytes) into
    /// each stage's argument (`memcpy` calls counted by uprobe, docs/benchmarks.md, eleventh
    /// session). Where they leave for good (a forward, a wait on the store or a token's check)
    /// they are moved out with `take()`; a refusal, rare, takes a copy.
    private func handle(_ request: GatewayRequest, facts: inout RequestFacts) {
        facts.client = request.client
        let head = request.head
        // The blocklist comes before anything else (the peer was checked at accept; this is the
        // client behind a trusted proxy).
        if !loop.blocklist.isEmpty, let client = request.client, loop.blocklist.contains(client) {
            return refuse(Refusal(.forbidden, RPCError.forbidden, "client address blocked", authFailure: .blocklist), facts)
        }
        let target: Intake.RPCTarget
        switch Intake.decide(head, networks: loop.networks ?? gateway.networks, served: request.lastNetwork.network(generation: loop.routingGeneration),
            readiness: gateway.readiness, facts: &facts, allocator: allocator, webSocket: request.webSocket != .none)
        {
        case .answer(let reply): return done(reply, facts)
        case .refuse(let refusal): return refuse(refusal, facts)
        case .preflight(let rpc): return preflight(request, rpc, facts: facts)
        case .rpc(let rpc): target = rpc
        }
        // The stages up to the pool run within microseconds of the request's start, so its
        // clock reading serves them (a clock read costs as much as a stage's own work); a stage
        // reached after a wait (the store, a token's check) reads the clock again.
        let now = request.startedAt
        // An address that guessed too many keys waits, and its guesses never reach the store.
        if let guarded = gateway.authFailures, let seconds = guarded.retryAfter(request.client, now: now) {
            var refusal = Refusal(.tooManyRequests, RPCError.limitExceeded,
                "too many unknown or malformed API keys from this address; try again in \(seconds) s", authFailure: .tooManyFailures)
            refusal.retryAfter = seconds
            return refuse(refusal, facts)
        }
        // The key stays a range of the head's bytes: checked and hashed in place.
        let token = Authentication.token(head, pathKey: target.pathKey)
        if let refusal = Authentication.refusal(head, token: token)
            ?? (request.webSocket == .none ? Intake.contentTypeRefusal(head) : nil)
            ?? (request.webSocket == .upgrade ? WebSocketUpgrade.refusal(head) : nil)
        {
            return refuse(refusal, facts)
        }
        if let tracer = gateway.tracing.tracer,
            RequestTrace.sampled(traceparent: head.string(head.traceparent), ratio: gateway.tracing.sampleRatio, draw: loop.nextDraw())
        {
            let now = DefaultTracerClock.now
            let waited = UInt64(max(0, gateway.clock() - request.startedAt))
            let start = DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: now.nanosecondsSinceEpoch - min(waited, now.nanosecondsSinceEpoch))
            facts.trace = RequestTrace(tracer: tracer, head: head, start: start, requestID: request.requestID, network: facts.network)
            facts.authStart = now
        }
        switch Authentication.lookup(
            head, token: token!, memo: &request.lastKey, hasher: gateway.keyHasher, loop: loop, directory: gateway.directory, now: now)
        {
        // Lent on the hit path; moved into the miss path's closure.
        case .answered(let answer): authenticated(answer, hit: true, request, head, facts: &facts, now: now)
        case .unknown(let hash, let fingerprint): resolve(hash, fingerprint, request, facts: facts.take())
        }
    }

    /// A key-cache miss on the request path: stages 3 to 6 once the store has answered.
    private func resolve(_ hash: KeyHash, _ fingerprint: TokenFingerprint, _ request: GatewayRequest, facts: consuming RequestFacts) {
        let facts = facts
        resolve(hash, fingerprint) { answer in
            var facts = facts
            self.authenticated(answer, hit: false, request, request.head, facts: &facts, now: self.gateway.clock())
        }
    }

    /// A key-cache miss: one store lookup (shared with concurrent misses), back on this loop.
    private func resolve(_ hash: KeyHash, _ fingerprint: TokenFingerprint, then next: @escaping (KeyDirectory.Answer) -> Void) {
        let directory = gateway.directory
        eventLoop.makeFutureWithTask { await directory.resolve(hash) }.assumeIsolated().whenSuccess { answer in
            if answer.expiresAt > self.gateway.clock() { self.loop.remember(fingerprint, answer) }
            next(answer)
        }
    }

    /// Stages 3 to 6, once the key is known. `head` is the request's, read out of it once (in
    /// `handle`) and lent from stage to stage; `now` is the gateway clock's reading they share.
    private func authenticated(
        _ answer: KeyDirectory.Answer, hit: Bool, _ request: GatewayRequest, _ head: HTTP1RequestHead, facts: inout RequestFacts,
        now: Int64
    ) {
        let context: KeyContext
        switch Authentication.decide(answer, hit: hit, facts: &facts) {
        case .failure(let refusal): return refuse(refusal, facts)
        case .success(let found): context = found
        }
        if let trace = facts.trace, let authStart = facts.authStart {
            trace.record("auth", start: authStart, end: DefaultTracerClock.now, attributes: [("tollgate.plan", context.plan.name)])
        }
        if head.contentEncoding != nil {
            switch RequestDecoding.decode(head, body: request.body, limit: min(context.plan.maxBodyBytes, gateway.settings.maxBodyBytes),
                allocator: allocator)
            {
            case .failure(let refusal): return refuse(refusal, facts, context: context)
            case .success(let decoded):
                facts.requestCoding = head.bodyCoding
                facts.decodedBytesIn = decoded.readableBytes
                request.body = decoded
            }
        }
        let origin = head.string(head.origin)
        let body = request.body
        if let refusal = KeyPolicy.check(context, network: facts.network, client: request.client, origin: origin,
            bodyBytes: body.readableBytes, nowSeconds: WallClock.nowMillis() / 1000, userAgent: head.string(head.userAgent))
        {
            return refuse(refusal, facts, context: context)
        }
        facts.corsOrigin = origin
        if let secret = context.record.secretHash, !Authentication.carriesSecret(head, hash: secret, hasher: gateway.keyHasher) {
            return refuse(Refusal(.unauthorized, RPCError.unauthorized,
                "this key requires its secret: send it as the HTTP Basic password (Authorization: Basic base64(:secret))",
                authFailure: .secret), facts, context: context)
        }
        if let max = context.plan.maxConnections, !connection.holdSlot(of: context.connections, max: max) {
            var refusal = Refusal(.tooManyRequests, RPCError.limitExceeded,
                "this key already has \(max) open connections, the plan's maximum; reuse one (keep-alive)")
            refusal.retryAfter = 1
            return refuse(refusal, facts, context: context)
        }
        if let verifier = gateway.jwt {
            return checkToken(verifier, context: context, request, head, facts: facts.take(), now: now)
        }
        if context.plan.requireJWT || context.record.requireJWT {
            // Fail closed: the key asks for tokens this server cannot check.
            return refuse(Refusal(.unauthorized, RPCError.unauthorized, "this key requires a JWT, and auth.jwt is not configured",
                authFailure: .jwt), facts, context: context)
        }
        admitted(context, request, head, facts: &facts, grant: nil, now: now)
    }

    /// Stage 2b, with `auth.jwt`: the bearer token beside the key (a JWT has dots, a key never
    /// does), verified once and then answered from this loop's grants until it expires.
    private func checkToken(
        _ verifier: JWTVerifier, context: KeyContext, _ request: GatewayRequest, _ head: HTTP1RequestHead, facts: consuming RequestFacts,
        now: Int64
    ) {
        let field = head.authorization.flatMap { Authentication.bearerToken(head, $0) }
            .flatMap { field in head.withBytes(field) { $0.contains(UInt8(ascii: ".")) } ? field : nil }
        guard let field else {
            if verifier.settings.require || context.plan.requireJWT || context.record.requireJWT {
                return refuse(Refusal(.unauthorized, RPCError.unauthorized, "this key requires a JWT: Authorization: Bearer <token>",
                    authFailure: .jwt), facts, context: context)
            }
            return admitted(context, request, head, facts: &facts, grant: nil, now: now)
        }
        let nowSeconds = WallClock.nowMillis() / 1000
        let hash = head.withBytes(field) { KeyHash(key: $0) }
        if let grant = loop.grant(hash, nowSeconds: nowSeconds) { return admitted(context, request, head, facts: &facts, grant: grant, now: now) }
        let token = head.string(field)
        let loop = self.loop
        eventLoop.makeFutureWithTask { await verifier.verify(token, nowSeconds: nowSeconds) }.assumeIsolated().whenSuccess { [facts] result in
            switch result {
            case .success(let grant):
                loop.remember(hash, grant)
                var facts = facts
                self.admitted(context, request, request.head, facts: &facts, grant: grant, now: self.gateway.clock())
            case .failure(let refusal):
                self.refuse(Refusal(.unauthorized, RPCError.unauthorized, refusal.message, authFailure: .jwt), facts, context: context)
            }
        }
    }

    /// Stages 3 (the envelope's part) to 6: the key, and its token's grant if any, allow the request.
    private func admitted(
        _ context: KeyContext, _ request: GatewayRequest, _ head: HTTP1RequestHead, facts: inout RequestFacts, grant: TokenGrant?,
        now: Int64
    ) {
        let body = request.body
        if let origins = grant?.origins, let origin = head.string(head.origin), !origins.contains(origin.lowercased()) {
            return refuse(Refusal(.forbidden, RPCError.forbidden, "origin not allowed by the token", authFailure: .forbidden), facts,
                context: context)
        }
        if request.webSocket == .upgrade {
            return connection.acceptWebSocket(context, request: request, facts: facts, pipeline: self)
        }

        let envelope: RPCEnvelope
        switch RPCEnvelopeReader.read(body, names: gateway.methodNames) {
        case .success(let value): envelope = value
        case .failure(.parse(let message)):
            return refuse(Refusal(.badRequest, RPCError.parseError, "parse error: \(message)"), facts, context: context)
        case .failure(.invalidRequest(let message)):
            return refuse(Refusal(.badRequest, RPCError.invalidRequest, "invalid request: \(message)"), facts, context: context)
        }
        let count = envelope.count
        facts.batchSize = count
        if let refusal = KeyPolicy.check(batchOf: count, isBatch: envelope.isBatch, plan: context.plan, webSocket: request.webSocket == .message) {
            return refuse(refusal, facts, context: context)
        }

        // Closure literals, not method references: a partially applied struct method would box
        // its value on the heap per request.
        let computeUnits = loop.computeUnits ?? gateway.computeUnits
        let metrics = gateway.metrics
        let tokenMethods = grant?.methods
        // Filled in place: a plan returned by its initializer came back as a copy (see `BatchPlan`).
        // No closure captures it, so it stays on the stack. Once complete it becomes a `let`
        // (below): lent from a `var`, the 212-byte plan was copied before each call that read it
        // (`bench/copies`).
        var planning = BatchPlan(webSocket: request.webSocket == .message)
        planning.fill(envelope, body: body, permits: { context.permits(method: $0) && (tokenMethods?.matches($0) ?? true) },
            contracts: Self.contracts(key: context.allowedContracts, token: grant?.addresses), cost: { computeUnits.cost(of: $0) },
            label: { metrics.methodLabel($0) })
        facts.method = planning.methodLabel
        facts.computeUnits = planning.cost
        guard planning.forwardCount > 0 || !planning.subscriptions.isEmpty else {
            switch planning.answerHere(envelope: envelope, body: body, allocator: allocator) {
            case .failure(let refusal): return refuse(refusal, facts, context: context, echo: body)
            case .success(let reply):
                facts.rateLimit = AdmissionControl.limits(context, now: now)
                return done(reply, facts)
            }
        }

        if let refused = AdmissionControl.admit(
            context, calls: planning.forwardCount, cost: planning.cost, singleID: planning.singleID, request: request, now: now,
            facts: &facts, allocator: allocator)
        {
            return done(refused, facts)
        }
        // Subscriptions are the gateway's own (shared upstream), over HTTP or WebSocket alike.
        if let call = planning.single, call.method == "eth_subscribe" || call.method == "eth_unsubscribe" {
            return connection.subscription(call, body: body, key: context, facts: facts, pipeline: self)
        }
        if !planning.subscriptions.isEmpty {
            // A WebSocket batch's subscription calls are answered here, beside what the node answers.
            planning.answered(connection.subscriptions(planning.subscriptions, body: body, key: context))
            if planning.forwardCount == 0 { return done(planning.answeredHere(allocator: allocator), facts) }
        }
        let plan = consume planning

        guard let pool = pool(for: facts.network, request: request) else {
            return refuse(Refusal(.serviceUnavailable, RPCError.internalError, "no upstream pool for network '\(facts.network)'"), facts,
                context: context)
        }
        var pending: CacheStage.Pending?
        var batchCache: BatchCache?
        if let cache = gateway.responseCache, let settings = gateway.cache, let chain = pool.chain, context.plan.cache,
            !(context.plan.cacheBypass && Self.asksNoCache(head))
        {
            if let call = plan.single {
                switch CacheStage.lookup(call, body: body, network: facts.network, chain: chain, cache: cache, settings: settings,
                    now: now, facts: &facts, allocator: allocator, front: loop.cacheFront)
                {
                case .answer(let reply): return done(reply, facts)
                case .forward(let miss): pending = miss
                }
            } else if !plan.batch.isEmpty {
                let lookup = BatchCache(plan.batch, body: body, network: facts.network, chain: chain, cache: cache, settings: settings,
                    now: now, allocator: allocator, front: loop.cacheFront)
                facts.cacheResult = lookup.result
                if lookup.hits == plan.batch.count {
                    let answer = lookup.answer(allocator: allocator)
                    return done(GatewayReply(status: .ok, body: RPCBatchWriter.merge(response: answer, extra: plan.refused, allocator: allocator) ?? answer),
                        facts)
                }
                if lookup.cacheable > 0 { batchCache = lookup }
            }
        }
        // A batch the cache answered in part takes part in single flight, asks the shared tier,
        // and sends only what is still missing.
        if let batch = batchCache {
            return forward(batch, plan: plan, pool: pool, request: request, facts: facts.take())
        }
        guard let pending else {
            // Nothing to store or share: the request's state is built where it goes, the rest
            // into the connection, then the upstream request in the pool's argument. (The
            // compiler still copies it into the call, as it does a local consumed into it:
            // written into the pool's record through a closure, it and the plan were copied
            // into the closure instead. `bench/retains`, docs/benchmarks.md.)
            let trace = facts.trace
            let responder = connection.awaitUpstream(plan, request: request, facts: &facts, pool: pool)
            return pool.execute(
                Forwarding.upstreamRequest(plan, request: request, head: head, trace: trace, writes: gateway.writeMethods, allocator: allocator),
                responder: responder)
        }
        var upstream = Forwarding.upstreamRequest(plan, request: request, head: head, trace: facts.trace, writes: gateway.writeMethods,
            allocator: allocator)
        // Reads about the moving head go to nodes at the head (the cache's verdict says which).
        upstream.atHead = pending.lifetime == .untilHead
        var forwarding = Forwarding(plan, request: request, facts: facts.take(), pool: pool)
        forwarding.cache = pending
        if let flight = gateway.singleFlight {
            // The waiter is only made when another request leads: a leader allocates nothing here.
            var waiting: SingleFlightWaiter?
            let loop = eventLoop
            // Captured alone: while the nested function below captured `plan`, the plan was
            // copied on the way to the pool on every forwarded request (`bench/retains`).
            let callerID = plan.singleID
            func waiter() -> SingleFlight.Waiter {
                let made = SingleFlightWaiter(flight: flight, upstream: upstream, pool: pool, callerID: callerID, request: body, allocator: allocator)
                waiting = made
                let bound = NIOLoopBound(made, eventLoop: loop)
                return .init(eventLoop: loop, deliver: { bound.value.delivered($0) })
            }
            if !flight.lead(pending.key, orWait: waiter()), let waiting {
                forwarding.cache = nil  // the leader stores it
                waiting.start(responder: connection.awaitUpstream(forwarding), on: eventLoop)
                return
            }
            forwarding.leading = true
        }
        if let shared = gateway.cache?.shared, let chain = pool.chain, shared.mayAsk(now: now) {
            return askShared(shared, pending: pending, chain: chain, upstream: upstream, forwarding: forwarding)
        }
        pool.execute(upstream, responder: connection.awaitUpstream(forwarding))
    }

    /// This loop's pool for the network: the connection's last one when it is the same
    /// network and no reload replaced the pools since (`NetworkMemo`), else looked up and
    /// remembered.
    private func pool(for network: String, request: GatewayRequest) -> (any UpstreamPool)? {
        let generation = loop.routingGeneration
        if let known = request.lastNetwork.pool(for: network, generation: generation) { return known }
        guard let pool = loop.pools[network] else { return nil }
        request.lastNetwork.remember(network, pool: pool, generation: generation)
        return pool
    }

    /// An in-process miss asks the shared cache before the node (stage 5c).
    private func askShared(
        _ shared: any SharedResponseCache, pending: CacheStage.Pending, chain: ChainTracker, upstream: UpstreamRequest, forwarding: Forwarding
    ) {
        let network = forwarding.facts.network
        let timeout = TimeAmount.nanoseconds(gateway.cache!.sharedTimeout.nanoseconds)
        SharedCacheLookup.fetch(shared, network: network, key: pending.key, timeout: timeout, on: eventLoop) { entry in
            var forwarding = forwarding
            if let entry, let cache = self.gateway.responseCache, let settings = self.gateway.cache,
                CacheStage.adopt(entry, for: pending, chain: chain, cache: cache, settings: settings, now: self.gateway.clock(),
                    compressor: self.loop.answerCompressor(self.gateway.settings.compression), allocator: self.allocator)
            {
                if forwarding.leading { self.gateway.singleFlight?.finish(pending.key, SharedCacheLookup.sharedAnswer(entry)) }
                forwarding.facts.cacheResult = .hit
                let answer = CacheStage.splice(entry.body, answerID: entry.id, callerID: forwarding.singleID, request: forwarding.body,
                    allocator: self.allocator)
                return self.done(GatewayReply(status: .ok, body: answer), forwarding.facts)
            }
            forwarding.pool.execute(upstream, responder: self.connection.awaitUpstream(forwarding))
        }
    }

    /// OPTIONS: browsers send no credentials in a preflight. With a header key there is nothing
    /// to check yet (the real request is checked in full); with a path key, its origins.
    private func preflight(_ request: GatewayRequest, _ target: Intake.RPCTarget, facts: RequestFacts) {
        var facts = facts
        let head = request.head
        guard let token = Authentication.token(head, pathKey: target.pathKey), Authentication.refusal(head, token: token) == nil else {
            return done(Responder.preflight(head, maxAge: gateway.settings.corsMaxAge, facts: &facts, allocator: allocator), facts)
        }
        let next = { (answer: KeyDirectory.Answer, hit: Bool) in
            var facts = facts
            switch Authentication.decide(answer, hit: hit, facts: &facts) {
            case .failure(let refusal): return refuse(refusal, facts)
            case .success(let context):
                guard context.permits(origin: head.string(head.origin)) else {
                    return refuse(Refusal(.forbidden, RPCError.forbidden, "origin not allowed for this key"), facts)
                }
                return done(Responder.preflight(head, maxAge: gateway.settings.corsMaxAge, facts: &facts, allocator: allocator), facts)
            }
        }
        switch Authentication.lookup(
            head, token: token, memo: &request.lastKey, hasher: gateway.keyHasher, loop: loop, directory: gateway.directory,
            now: gateway.clock())
        {
        case .answered(let answer): next(answer, true)
        case .unknown(let hash, let fingerprint): resolve(hash, fingerprint) { next($0, false) }
        }
    }

    /// The contracts a call may name: the key's list, narrowed by the token's.
    static func contracts(key: Set<String>?, token: Set<String>?) -> Set<String>? {
        guard let token else { return key }
        guard let key else { return token }
        return key.intersection(token)
    }

    /// `Cache-Control: no-cache` (or `no-store`) among the header's directives.
    static func asksNoCache(_ head: HTTP1RequestHead) -> Bool {
        guard let field = head.cacheControl else { return false }
        return head.withBytes(field) { HTTP1Syntax.listContains($0, "no-cache") || HTTP1Syntax.listContains($0, "no-store") }
    }

    func done(_ reply: consuming GatewayReply, _ facts: borrowing RequestFacts) {
        connection.respond(consume reply, facts: facts)
    }

    /// A stage's refusal as a JSON-RPC error. After authentication (`context`), the client
    /// still learns where its limits stand.
    func refuse(_ refusal: Refusal, _ facts: consuming RequestFacts, context: KeyContext? = nil, echo body: ByteBuffer? = nil) {
        if let reason = refusal.authFailure {
            facts.authFailure = reason
            if reason == .unknown || reason == .malformed, let guarded = gateway.authFailures {
                guarded.failed(facts.client, now: gateway.clock())
            }
        }
        if let context { facts.rateLimit = AdmissionControl.limits(context, now: gateway.clock()) }
        var reply = GatewayReply.error(refusal.status, refusal.error, id: refusal.id, request: body, allocator: allocator)
        if refusal.allow { reply.headers.add(name: "Allow", value: "POST, OPTIONS") }
        if let seconds = refusal.retryAfter { reply.headers.add(name: "Retry-After", value: String(seconds)) }
        if refusal.webSocketVersion { reply.headers.add(name: "Sec-WebSocket-Version", value: "13") }
        if refusal.acceptEncoding { reply.headers.add(name: "Accept-Encoding", value: "gzip, deflate") }
        done(reply, facts)
    }
}

extension RPCEnvelope {
    /// Items in the body, without building the `items` array.
    var count: Int {
        switch self {
        case .single: 1
        case .batch(let items): items.count
        }
    }
}
