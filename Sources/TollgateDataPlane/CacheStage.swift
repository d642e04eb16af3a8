import NIOCore
import TollgateCompression
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// What the response cache is allowed to do (`cache.*` in the config).
public struct ResponseCacheSettings: Sendable {
    /// Bytes in all (shared by the event loops).
    public var maxBytes: Int
    /// Caps: answers about the moving head go when the head moves, or after this at the latest;
    /// immutable ones after this (they cannot go wrong, only cold).
    public var headTTL: Duration
    public var immutableTTL: Duration
    public var policy: CachePolicy
    /// The cache every replica shares (Redis), asked after an in-process miss; nil: none.
    public var shared: (any SharedResponseCache)?
    /// How long a request waits on the shared cache before it goes to a node instead.
    public var sharedTimeout: Duration

    public init(
        maxBytes: Int, headTTL: Duration = .seconds(12), immutableTTL: Duration = .seconds(3600), policy: CachePolicy = CachePolicy(),
        shared: (any SharedResponseCache)? = nil, sharedTimeout: Duration = .milliseconds(50)
    ) {
        self.shared = shared
        self.sharedTimeout = sharedTimeout
        self.maxBytes = maxBytes
        self.headTTL = headTTL
        self.immutableTTL = immutableTTL
        self.policy = policy
    }
}

/// Stage 5b, the response cache, between admission and forward (a hit is charged like any
/// request). `eth_blockNumber` is answered from the network's chain state: the highest head a
/// healthy node reported, which never goes back. Other single calls are looked up by network,
/// method and canonical params in the shared in-process cache; a hit is the node's cached bytes with the
/// caller's `id` spliced in. A miss goes upstream carrying what its answer may be stored as.
enum CacheStage {
    /// A miss on its way upstream: where its answer goes, and under which rules.
    struct Pending {
        var key: [UInt8]
        var lifetime: CachePolicy.Lifetime
        var epoch: UInt64
        var method: String
    }

    enum Decision {
        case answer(GatewayReply)
        case forward(Pending?)
    }

    static func lookup(
        _ call: RPCCall, body: ByteBuffer, network: String, chain: ChainTracker, cache: ResponseCacheStore, settings: ResponseCacheSettings,
        now: Int64, facts: inout RequestFacts, allocator: ByteBufferAllocator, front: CacheFront? = nil
    ) -> Decision {
        switch probe(call, body: body, network: network, chain: chain, cache: cache, settings: settings, now: now, allocator: allocator, front: front) {
        case .hit(let answer, let gzipped):
            facts.cacheResult = .hit
            var reply = GatewayReply(status: .ok, body: answer)
            reply.gzipped = gzipped
            return .answer(reply)
        case .miss(let pending):
            facts.cacheResult = .miss
            return .forward(pending)
        case .uncacheable:
            facts.cacheResult = .uncacheable
            return .forward(nil)
        }
    }

    /// What the cache holds for one call.
    enum Probe {
        /// The answer, with the caller's id in it, and its gzip form when the entry keeps one.
        case hit(ByteBuffer, GzipForm? = nil)
        case miss(Pending)
        case uncacheable
    }

    /// `front`: this loop's lock-free front, asked before the shared store.
    static func probe(
        _ call: RPCCall, body: ByteBuffer, network: String, chain: ChainTracker, cache: ResponseCacheStore, settings: ResponseCacheSettings,
        now: Int64, allocator: ByteBufferAllocator, front: CacheFront? = nil
    ) -> Probe {
        if call.method == "eth_blockNumber" {
            let served = chain.served(now: now)
            if served > 0 { return .hit(headAnswer(served, id: call.id, request: body, allocator: allocator)) }
        }
        guard settings.policy.rule(for: call.method) != .never, let params = RPCParams.of(call, in: body) else { return .uncacheable }
        let lifetime = settings.policy.lifetime(method: call.method, params: params, finalized: chain.finalized)
        guard lifetime != .never else { return .uncacheable }
        // Two networks never share an entry: the network leads the key.
        var key: [UInt8] = []
        key.reserveCapacity(network.utf8.count + call.method.utf8.count + call.span.count + 2)
        key.append(contentsOf: network.utf8)
        key.append(0)
        key.append(contentsOf: call.method.utf8)
        key.append(0)
        params.canonical(into: &key)
        let epoch = chain.epoch
        var found = front?.entry(key, epoch: epoch, now: now)
        if found == nil, let shared = cache.entry(key, epoch: epoch, now: now) {
            front?.keep(key, shared, maxBytes: settings.maxBytes / 16, now: now)
            found = shared
        }
        if let entry = found {
            let gzipped = entry.gzip.map { GzipForm.member($0, id: call.id.flatMap { body.getSlice(at: body.readerIndex + $0.lowerBound, length: $0.count) }) }
            return .hit(splice(entry, id: call.id, request: body, allocator: allocator), gzipped)
        }
        return .miss(Pending(key: key, lifetime: lifetime, epoch: epoch, method: call.method))
    }

    /// Keeps a node's answer if the policy allows it: a result (not an error), not null, and
    /// for the moving head only from a node at the head, under the epoch the request began in.
    /// Returns the entry's gzip form when it made one, so the reply to this very miss uses it
    /// instead of compressing the same answer again.
    @discardableResult
    static func store(
        _ pending: Pending, response: UpstreamResponse, chain: ChainTracker, cache: ResponseCacheStore, settings: ResponseCacheSettings,
        now: Int64, compressor: AnswerCompressor? = nil, allocator: ByteBufferAllocator
    ) -> GzipMember? {
        guard response.status == .ok else { return nil }
        return store(pending, answer: response.body, nodeHead: response.nodeHead, chain: chain, cache: cache, settings: settings, now: now,
            compressor: compressor, allocator: allocator)
    }

    /// Keeps one answer object (a single call's answer, or one item of a batch answer). With a
    /// `compressor`, an answer of at least its minimum size also keeps a gzip form (compressed
    /// once here, served to every hit that accepts gzip without compressing again).
    @discardableResult
    static func store(
        _ pending: Pending, answer: ByteBuffer, nodeHead: UInt64?, chain: ChainTracker, cache: ResponseCacheStore,
        settings: ResponseCacheSettings, now: Int64, compressor: AnswerCompressor? = nil, allocator: ByteBufferAllocator
    ) -> GzipMember? {
        guard let (id, isError) = RPCResponseReader.idRange(answer), !isError else { return nil }
        let lifetime = settings.policy.lifetime(
            of: RPCParams.result(in: answer), method: pending.method, requested: pending.lifetime, finalized: chain.finalized)
        switch lifetime {
        case .never: return nil
        case .untilHead:
            guard chain.epoch == pending.epoch, let nodeHead, nodeHead >= chain.head else { return nil }
        case .immutable: break
        }
        // A copy of exactly the answer: the response is a slice of a read buffer that may be larger.
        var body = allocator.buffer(capacity: answer.readableBytes)
        body.writeImmutableBuffer(answer)
        let ttl = settings.policy.ttl(for: pending.method) ?? (lifetime == .immutable ? settings.immutableTTL : settings.headTTL)
        var entry = ResponseCacheShard.Entry(body: body, id: id, epoch: lifetime == .immutable ? nil : pending.epoch, expiresAt: now + ttl.nanoseconds)
        if let compressor, body.readableBytes >= compressor.minimumBytes {
            entry.gzip = GzipMember(answer: body, id: id, compressor: compressor, allocator: allocator)
        }
        cache.store(pending.key, entry)
        if let shared = settings.shared {
            // Replicas do not share epochs: an answer about the head is bound to the head itself.
            var head: ChainHead?
            if lifetime == .untilHead {
                let snapshot = chain.snapshot
                guard snapshot.epoch == pending.epoch else { return entry.gzip }
                head = snapshot.head
            }
            shared.store(network: network(of: pending.key), key: pending.key, entry: SharedCacheEntry(body: body, id: id, head: head), ttl: ttl)
        }
        return entry.gzip
    }

    /// The network a key is for: its first field.
    static func network(of key: [UInt8]) -> String {
        String(decoding: key.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A shared cache entry as this replica's answer: immutable, or bound to the head this
    /// replica is at now. Kept in the in-process cache too; nil when it is not valid here.
    static func adopt(
        _ entry: SharedCacheEntry, for pending: Pending, chain: ChainTracker, cache: ResponseCacheStore, settings: ResponseCacheSettings, now: Int64,
        compressor: AnswerCompressor? = nil, allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) -> Bool {
        var epoch: UInt64?
        if let head = entry.head {
            let snapshot = chain.snapshot
            guard head == snapshot.head, head.number > 0 else { return false }
            epoch = snapshot.epoch
        }
        let ttl = settings.policy.ttl(for: pending.method) ?? (epoch == nil ? settings.immutableTTL : settings.headTTL)
        var adopted = ResponseCacheShard.Entry(body: entry.body, id: entry.id, epoch: epoch, expiresAt: now + ttl.nanoseconds)
        if let compressor, entry.body.readableBytes >= compressor.minimumBytes {
            adopted.gzip = GzipMember(answer: entry.body, id: entry.id, compressor: compressor, allocator: allocator)
        }
        cache.store(pending.key, adopted)
        return true
    }

    /// The cached answer with the caller's id (or null, for a notification) in place of the one stored.
    static func splice(_ entry: ResponseCacheShard.Entry, id: Range<Int>?, request: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        splice(entry.body, answerID: entry.id, callerID: id, request: request, allocator: allocator)
    }

    /// `answer` with the bytes at `answerID` replaced by the caller's id from `request`.
    static func splice(_ answer: ByteBuffer, answerID: Range<Int>, callerID id: Range<Int>?, request: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        let callerID = id.map { request.getSlice(at: request.readerIndex + $0.lowerBound, length: $0.count)! }
        var out = allocator.buffer(capacity: answer.readableBytes + (callerID?.readableBytes ?? 4))
        out.writeImmutableBuffer(answer.getSlice(at: answer.readerIndex, length: answerID.lowerBound)!)
        if let callerID { out.writeImmutableBuffer(callerID) } else { out.writeStaticString("null") }
        let tail = answer.readableBytes - answerID.upperBound
        out.writeImmutableBuffer(answer.getSlice(at: answer.readerIndex + answerID.upperBound, length: tail)!)
        return out
    }

    /// A leader's answer as a waiter's: the same bytes with the waiter's id; nil when it is not
    /// a single good answer (the waiter then asks itself).
    static func shared(_ response: UpstreamResponse, callerID: Range<Int>?, request: ByteBuffer, allocator: ByteBufferAllocator) -> UpstreamResponse? {
        guard response.status == .ok, let (id, isError) = RPCResponseReader.idRange(response.body), !isError else { return nil }
        var mine = response
        mine.body = splice(response.body, answerID: id, callerID: callerID, request: request, allocator: allocator)
        mine.attempts = 0
        mine.upstreamNanos = 0
        return mine
    }

    static func headAnswer(_ head: UInt64, id: Range<Int>?, request: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: 64)
        out.writeStaticString(#"{"jsonrpc":"2.0","id":"#)
        if let id, let callerID = request.getSlice(at: request.readerIndex + id.lowerBound, length: id.count) {
            out.writeImmutableBuffer(callerID)
        } else {
            out.writeStaticString("null")
        }
        out.writeStaticString(#","result":"0x"#)
        out.writeString(String(head, radix: 16))
        out.writeStaticString(#""}"#)
        return out
    }
}
