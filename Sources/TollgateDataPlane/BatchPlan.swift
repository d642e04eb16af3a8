import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// Stage 4, batch plan: which calls of the envelope go upstream, which are answered here
/// (methods the plan denies, contracts the key may not touch, items that are not requests),
/// and what the forwarded ones cost. Pure: the envelope, the key's method and contract policy
/// and the CU table in, a plan out.
struct BatchPlan {
    /// Calls to forward, in order. A single call is kept apart, so that the common request
    /// builds no array.
    private(set) var single: RPCCall?
    private(set) var batch: [RPCCall] = []
    /// A WebSocket batch's `eth_subscribe` / `eth_unsubscribe` calls: the gateway's own, answered
    /// here (their answers join `refused` through `answered`), never sent to a node.
    private(set) var subscriptions: [RPCCall] = []
    private(set) var isBatch = false
    /// Error objects for the items answered here, comma-joined (spliced into the node's batch answer).
    private(set) var refused: [UInt8] = []
    private(set) var anyDenied = false
    /// Compute units of the forwarded calls.
    private(set) var cost = 0
    /// `batch`, the single call's method, or `other` for methods outside the metric's label set.
    private(set) var methodLabel = "-"
    /// Why a single call was refused, when it was (a batch's refusals are in `refused`).
    private(set) var singleRefusal: Refusal?
    private var webSocket = false

    /// An empty plan, for `fill`. `webSocket`: the batch came on a WebSocket, where its
    /// subscription calls are served (elsewhere they are refused in place).
    ///
    /// The request path makes its plan this way, in place in a local: a plan returned by the
    /// planning initializer reached the caller as a copy, retaining every array and string in
    /// it, and was destroyed twice (`bench/retains`, docs/benchmarks.md, eleventh session).
    init(webSocket: Bool = false) {
        self.webSocket = webSocket
    }

    /// `contracts`: the key's contract allowlist (lowercase addresses), nil when it has none;
    /// only then are the params of address-bearing calls read.
    init(
        _ envelope: RPCEnvelope, body: ByteBuffer, permits: (String) -> Bool, contracts: Set<String>? = nil, cost: (String) -> Int,
        label: (String) -> String, webSocket: Bool = false
    ) {
        self.init(webSocket: webSocket)
        fill(envelope, body: body, permits: permits, contracts: contracts, cost: cost, label: label)
    }

    /// Plans `envelope` into this empty plan (see `init(webSocket:)`).
    mutating func fill(
        _ envelope: RPCEnvelope, body: ByteBuffer, permits: (String) -> Bool, contracts: Set<String>? = nil, cost: (String) -> Int,
        label: (String) -> String
    ) {
        switch envelope {
        case .single(let item):
            isBatch = false
            plan(item, body: body, permits: permits, contracts: contracts, cost: cost)
            if case .call(let call) = item { methodLabel = label(call.method) }
        case .batch(let items):
            isBatch = true
            methodLabel = "batch"
            batch.reserveCapacity(items.count)
            for item in items { plan(item, body: body, permits: permits, contracts: contracts, cost: cost) }
        }
    }

    private mutating func plan(
        _ item: RPCItem, body: ByteBuffer, permits: (String) -> Bool, contracts: Set<String>?, cost price: (String) -> Int
    ) {
        switch item {
        case .call(let call):
            if !permits(call.method) {
                anyDenied = true
                let message = "method '\(call.method)' is not allowed on this plan"
                if !isBatch { singleRefusal = Refusal(.forbidden, RPCError.methodNotFound, message, id: call.id) }
                append(RPCError(code: RPCError.methodNotFound, message: message), id: call.id, body: body)
            } else if let contracts, let message = Self.contractRefusal(call, body: body, contracts: contracts) {
                anyDenied = true
                if !isBatch { singleRefusal = Refusal(.forbidden, RPCError.forbidden, message, id: call.id, authFailure: .forbidden) }
                append(RPCError(code: RPCError.forbidden, message: message), id: call.id, body: body)
            } else if isBatch, call.method == "eth_subscribe" || call.method == "eth_unsubscribe" {
                if webSocket {
                    subscriptions.append(call)
                    cost += price(call.method)
                } else {
                    anyDenied = true
                    append(RPCError(code: RPCError.methodNotFound, message: "\(call.method) needs a WebSocket: connect to ws://…/v1/{network}/{key}"),
                        id: call.id, body: body)
                }
            } else {
                if isBatch { batch.append(call) } else { single = call }
                cost += price(call.method)
            }
        case .invalid(let id, let reason):
            append(RPCError(code: RPCError.invalidRequest, message: "invalid request: \(reason)"), id: id, body: body)
        }
    }

    /// Why `call` may not go to the node under a contract allowlist, or nil when it may.
    static func contractRefusal(_ call: RPCCall, body: ByteBuffer, contracts: Set<String>) -> String? {
        guard CallAddresses.applies(to: call.method) else { return nil }
        switch CallAddresses.of(method: call.method, params: RPCParams.of(call, in: body)) {
        case .none:
            return nil
        case .addresses(let addresses):
            guard let outside = addresses.first(where: { !contracts.contains($0) }) else { return nil }
            return "address \(outside) not allowed for this key"
        case .unreadable(let reason):
            return "\(reason): this key may only use its allowed contract addresses"
        }
    }

    private mutating func append(_ error: RPCError, id: Range<Int>?, body: ByteBuffer) {
        if !refused.isEmpty { refused.append(UInt8(ascii: ",")) }
        RPCErrorWriter.append(error, id: id, body: body, to: &refused)
    }

    /// Inlined, as `singleID`: called out of line, each read passed the caller's plan by
    /// address only after a copy of it (212 bytes, `bench/copies`).
    var forwardCount: Int {
        @inline(__always) get { isBatch ? batch.count : (single == nil ? 0 : 1) }
    }

    /// Answers made here for some of the batch's calls (its subscriptions), comma-joined like `refused`.
    mutating func answered(_ items: [UInt8]) {
        guard !items.isEmpty else { return }
        if !refused.isEmpty { refused.append(UInt8(ascii: ",")) }
        refused.append(contentsOf: items)
    }

    /// The batch's answer when nothing of it goes to a node but some of it was served here.
    func answeredHere(allocator: ByteBufferAllocator) -> GatewayReply {
        let bytes = RPCBatchWriter.array(refused)
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return GatewayReply(status: .ok, body: buffer)
    }

    /// The id to echo in a gateway-made error: a single call's.
    var singleID: Range<Int>? {
        @inline(__always) get { single?.id }
    }

    /// The methods forwarded, for node selection (nodes that take them all) and timeouts.
    var methods: UpstreamMethods {
        if let single { return .one(single.method) }
        return .many(batch.map(\.method))
    }

    /// Whether any forwarded call changes chain state (never resent once sent).
    func containsWrite(_ writes: MethodSet) -> Bool {
        if let single { return writes.contains(single.method) }
        return batch.contains { writes.contains($0.method) }
    }

    /// The body to send: the client's bytes untouched, or the forwarded items of a batch.
    func upstreamBody(_ body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        refused.isEmpty && subscriptions.isEmpty ? body : RPCBatchWriter.forwardBody(spans: batch.map(\.span), of: body, allocator: allocator)
    }

    /// The answer when nothing may be forwarded: the single item's error, or the batch of errors.
    func answerHere(envelope: RPCEnvelope, body: ByteBuffer, allocator: ByteBufferAllocator) -> Result<GatewayReply, Refusal> {
        if case .single(let item) = envelope {
            switch item {
            case .invalid(let id, let reason):
                return .failure(Refusal(.badRequest, RPCError.invalidRequest, "invalid request: \(reason)", id: id))
            case .call(let call):
                return .failure(singleRefusal
                    ?? Refusal(.forbidden, RPCError.methodNotFound, "method '\(call.method)' is not allowed on this plan", id: call.id))
            }
        }
        let bytes = RPCBatchWriter.array(refused)
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        var reply = GatewayReply(status: anyDenied ? .ok : .badRequest, body: buffer)
        reply.rpcErrorCode = anyDenied ? RPCError.methodNotFound : RPCError.invalidRequest
        reply.refusal = "no item of the batch may be forwarded"
        return .success(reply)
    }
}
