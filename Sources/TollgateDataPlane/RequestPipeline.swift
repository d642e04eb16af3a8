import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC
import Tracing

/// The request path up to authentication: route, method, key, content type, key lookup.
///
/// Runs on the connection's event loop. Everything is synchronous except a key-cache miss,
/// which waits on the key directory (and so on the store) and comes back to the loop.
struct RequestPipeline {
    let gateway: Gateway
    let loop: LoopState
    let allocator: ByteBufferAllocator
    /// Called exactly once with the outcome, on the loop: at once when nothing had to wait,
    /// later after a key-store miss or an upstream exchange.
    let respond: (GatewayOutcome) -> Void

    var eventLoop: any EventLoop { loop.eventLoop }

    func handle(_ request: GatewayRequest) {
        var facts = RequestFacts()
        let head = request.head
        let target = head.target
        switch head.withBytes(target, { Route(target: $0) }) {
        case .healthz:
            return done(GatewayReply(status: .ok, body: allocator.buffer(string: #"{"status":"ok"}"#)), facts)
        case .readyz:
            let readiness = gateway.readiness()
            let status: HTTPResponseStatus = readiness.ready ? .ok : .serviceUnavailable
            return done(GatewayReply(status: status, body: allocator.buffer(string: readiness.json)), facts)
        case .notFound:
            return fail(.notFound, RPCError(code: RPCError.invalidRequest, message: "no such route; use POST /v1/{network}/{key}"), facts)
        case .rpc(let networkRange, let keyRange):
            // Network names are short: this String fits inline, no allocation.
            let network = head.string(HTTP1Field(Int(target.start) + networkRange.lowerBound, networkRange.count))
            guard gateway.networks.contains(network) else {
                facts.network = "unknown"
                return fail(.notFound, RPCError(code: RPCError.invalidRequest, message: "unknown network '\(network.prefix(64))'"), facts)
            }
            facts.network = network
            let pathKey = keyRange.map { HTTP1Field(Int(target.start) + $0.lowerBound, $0.count) }
            return rpc(request, pathKey: pathKey, facts: facts)
        }
    }

    private func rpc(_ request: GatewayRequest, pathKey: HTTP1Field?, facts: RequestFacts) {
        var facts = facts
        let head = request.head
        let isPreflight = head.method == .options
        guard head.method == .post || isPreflight else {
            var reply = GatewayReply.error(.methodNotAllowed, RPCError(code: RPCError.invalidRequest, message: "use POST"), allocator: allocator)
            reply.headers.add(name: "Allow", value: "POST, OPTIONS")
            return done(reply, facts)
        }
        // The key stays a range of the head's bytes: checked and hashed in place.
        let token: HTTP1Field?
        if let pathKey {
            token = pathKey
        } else if let apiKey = head.apiKey {
            token = apiKey
        } else if let authorization = head.authorization {
            token = Self.bearerToken(head, authorization)
        } else {
            token = nil
        }
        if isPreflight {
            // Browsers send no credentials in a preflight; with a header key there is nothing to
            // check yet, and the real request is checked in full.
            guard let token, head.withBytes(token, { APIKeyToken.isWellFormed($0) }) else { return done(preflight(head, facts: &facts), facts) }
            return authenticate(head.withBytes(token) { KeyHash(key: $0) }, facts: facts) { context, facts in
                var facts = facts
                guard context.permits(origin: head.string(head.origin)) else {
                    return fail(.forbidden, RPCError(code: RPCError.forbidden, message: "origin not allowed for this key"), facts)
                }
                return done(preflight(head, facts: &facts), facts)
            }
        }
        guard let token else {
            gateway.metrics.authFailure(&loop.metricHandles, reason: "missing")
            return fail(.unauthorized, RPCError(code: RPCError.unauthorized, message: "missing API key: use /v1/{network}/{key}, Authorization: Bearer, or X-API-Key"), facts)
        }
        guard head.withBytes(token, { APIKeyToken.isWellFormed($0) }) else {
            gateway.metrics.authFailure(&loop.metricHandles, reason: "malformed")
            return fail(.unauthorized, RPCError(code: RPCError.unauthorized, message: "malformed API key"), facts)
        }
        if let contentType = head.contentType, !Self.isJSON(head, contentType) {
            return fail(.unsupportedMediaType, RPCError(code: RPCError.invalidRequest, message: "Content-Type must be application/json"), facts)
        }
        var authStart: DefaultTracerClock.Timestamp?
        if let tracer = gateway.tracing.tracer,
            RequestTrace.sampled(traceparent: head.string(head.traceparent), ratio: gateway.tracing.sampleRatio, draw: loop.nextDraw())
        {
            let now = DefaultTracerClock.now
            let waited = UInt64(max(0, gateway.clock() - request.startedAt))
            let start = DefaultTracerClock.Timestamp(nanosecondsSinceEpoch: now.nanosecondsSinceEpoch - min(waited, now.nanosecondsSinceEpoch))
            facts.trace = RequestTrace(tracer: tracer, head: head, start: start, requestID: request.requestID, network: facts.network)
            authStart = now
        }
        return authenticate(head.withBytes(token) { KeyHash(key: $0) }, facts: facts) { context, facts in
            if let trace = facts.trace, let authStart {
                trace.record("auth", start: authStart, end: DefaultTracerClock.now, attributes: [("tollgate.plan", context.plan.name)])
            }
            AuthorizedRequest(pipeline: self, context: context, request: request, facts: facts).run()
        }
    }

    /// Resolves the key (loop cache, then directory cache, then one store lookup) and continues
    /// with `next` on this loop; refusals for unknown, revoked or unusable keys are made here.
    private func authenticate(_ hash: KeyHash, facts: RequestFacts, next: @escaping (KeyContext, RequestFacts) -> Void) {
        let now = gateway.clock()
        if let answer = loop.cachedKey(hash, now: now) {
            gateway.metrics.keyCache(&loop.metricHandles, result: Self.cacheResult(answer, hit: true))
            return decide(answer.lookup, facts: facts, next: next)
        }
        if let answer = gateway.directory.cached(hash) {
            gateway.metrics.keyCache(&loop.metricHandles, result: Self.cacheResult(answer, hit: true))
            // An entry served while it is refreshed is expired: the loop keeps no copy of it.
            if answer.expiresAt > now { loop.remember(hash, answer) }
            return decide(answer.lookup, facts: facts, next: next)
        }
        let directory = gateway.directory
        eventLoop.makeFutureWithTask { await directory.resolve(hash) }.assumeIsolated().whenSuccess { answer in
            self.gateway.metrics.keyCache(&self.loop.metricHandles, result: Self.cacheResult(answer, hit: false))
            if answer.expiresAt > self.gateway.clock() { self.loop.remember(hash, answer) }
            self.decide(answer.lookup, facts: facts, next: next)
        }
    }

    /// `hit`/`miss`, or how the answer stood in for the store while it was down.
    private static func cacheResult(_ answer: KeyDirectory.Answer, hit: Bool) -> String {
        switch answer.source {
        case .store: hit ? "hit" : "miss"
        case .stale: "stale"
        case .anonymous: "anonymous"
        }
    }

    private func decide(_ lookup: KeyLookup, facts: RequestFacts, next: (KeyContext, RequestFacts) -> Void) {
        var facts = facts
        switch lookup {
        case .found(let context):
            facts.plan = context.plan.name
            facts.keyID = context.record.id
            facts.keyPrefix = context.record.prefix
            return next(context, facts)
        case .notFound:
            gateway.metrics.authFailure(&loop.metricHandles, reason: "unknown")
            return fail(.unauthorized, RPCError(code: RPCError.unauthorized, message: "unknown API key"), facts)
        case .unknownPlan(let plan):
            gateway.metrics.authFailure(&loop.metricHandles, reason: "plan")
            return fail(.forbidden, RPCError(code: RPCError.forbidden, message: "the key's plan '\(plan)' is not configured"), facts)
        case .unavailable:
            gateway.metrics.authFailure(&loop.metricHandles, reason: "store_unavailable")
            return fail(.serviceUnavailable, RPCError(code: RPCError.internalError, message: "key store unavailable, try again"), facts)
        }
    }

    private func preflight(_ head: HTTP1RequestHead, facts: inout RequestFacts) -> GatewayReply {
        var reply = GatewayReply(status: .noContent, body: allocator.buffer(capacity: 0))
        facts.corsOrigin = head.string(head.origin)
        reply.headers.add(name: "Access-Control-Allow-Methods", value: "POST, OPTIONS")
        reply.headers.add(name: "Access-Control-Allow-Headers", value: "Content-Type, Authorization, X-API-Key, X-Request-ID, traceparent")
        reply.headers.add(name: "Access-Control-Max-Age", value: String(gateway.settings.corsMaxAge))
        return reply
    }

    /// `Bearer <token>` (scheme case-insensitive, spaces after it skipped) → the token's range.
    static func bearerToken(_ head: HTTP1RequestHead, _ field: HTTP1Field) -> HTTP1Field? {
        head.withBytes(field) { bytes -> HTTP1Field? in
            guard bytes.count > 7, HTTP1Syntax.equalsIgnoringCase(bytes, 0, 7, "bearer ") else { return nil }
            var start = 7
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
            return HTTP1Field(Int(field.start) + start, bytes.count - start)
        }
    }

    /// application/json (with any parameters), or the two JSON-RPC media types some clients
    /// send; compared on the head's bytes, without making a String.
    static func isJSON(_ head: HTTP1RequestHead, _ field: HTTP1Field) -> Bool {
        head.withBytes(field) { bytes in
            var end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            while end > 0, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            return HTTP1Syntax.equalsIgnoringCase(bytes, 0, end, "application/json")
                || HTTP1Syntax.equalsIgnoringCase(bytes, 0, end, "application/json-rpc")
                || HTTP1Syntax.equalsIgnoringCase(bytes, 0, end, "application/jsonrequest")
        }
    }


    func done(_ reply: GatewayReply, _ facts: RequestFacts) {
        respond(GatewayOutcome(reply: reply, facts: facts))
    }

    func fail(
        _ status: HTTPResponseStatus, _ error: RPCError, _ facts: RequestFacts, id: Range<Int>? = nil, body: ByteBuffer? = nil
    ) {
        done(.error(status, error, id: id, request: body, allocator: allocator), facts)
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return view
    }
}
