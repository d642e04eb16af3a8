import NIOCore
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// The response cache for a batch: each forwarded call is looked up on its own; the hits are
/// answered here, only the misses go to the node (as a smaller batch), and the node's answers
/// are put back in the order of the calls and stored under the same rules as a single call's.
///
/// Nodes may answer a batch in any order, so answers are matched to calls by id (the raw id
/// bytes; a repeated id is matched in order). A call the node left unanswered gets an error
/// object of its own rather than a silent gap; answers that match no call are passed on after
/// the others. When the node fails the misses altogether (an error status, a body that is no
/// batch, a timeout), the hits still go back, each miss with an error object saying why. With a
/// shared (Redis) tier, the cacheable misses are asked there next, all at once, before the node
/// (`adopt`). Cacheable misses take part in single flight too (`BatchFlight`): a call another
/// request has in flight is answered from that request's answer (`join`).
struct BatchCache {
    enum Slot {
        /// The cached answer, with the caller's id in it.
        case hit(ByteBuffer)
        /// Forwarded; `pending` says where its answer is kept (nil: not cacheable).
        case miss(RPCCall, pending: CacheStage.Pending?)
    }

    private(set) var slots: [Slot] = []
    private(set) var hits = 0
    /// Of `hits`, the calls answered by another request's trip (single flight), not the cache.
    private(set) var joined = 0
    private(set) var cacheable = 0

    /// Looks up every call of `calls` (the plan's forwarded calls, in order).
    init(
        _ calls: [RPCCall], body: ByteBuffer, network: String, chain: ChainTracker, cache: ResponseCacheStore, settings: ResponseCacheSettings,
        now: Int64, allocator: ByteBufferAllocator, front: CacheFront? = nil
    ) {
        slots.reserveCapacity(calls.count)
        for call in calls {
            // A notification has no id to answer with: it is forwarded and not kept.
            guard call.id != nil else {
                slots.append(.miss(call, pending: nil))
                continue
            }
            switch CacheStage.probe(call, body: body, network: network, chain: chain, cache: cache, settings: settings, now: now, allocator: allocator,
                front: front)
            {
            case .hit(let answer, _):
                hits += 1
                cacheable += 1
                slots.append(.hit(answer))
            case .miss(let pending):
                cacheable += 1
                slots.append(.miss(call, pending: pending))
            case .uncacheable:
                slots.append(.miss(call, pending: nil))
            }
        }
    }

    /// The call at `index`, a miss, is answered by the request that had it in flight: `answer`
    /// (with this caller's id in it) from now on.
    mutating func join(_ index: Int, answer: ByteBuffer) {
        guard case .miss = slots[index] else { return }
        slots[index] = .hit(answer)
        hits += 1
        joined += 1
    }

    /// The cacheable misses' keys, for one lookup in the shared tier.
    var sharedKeys: [[UInt8]] {
        var keys: [[UInt8]] = []
        for case .miss(_, let pending?) in slots { keys.append(pending.key) }
        return keys
    }

    /// The shared tier's entries for `sharedKeys` (in their order; nil: not there): the ones
    /// valid on this replica become hits (and are kept in-process); the count adopted.
    mutating func adopt(
        _ entries: [SharedCacheEntry?], body: ByteBuffer, chain: ChainTracker, cache: ResponseCacheStore, settings: ResponseCacheSettings,
        now: Int64, allocator: ByteBufferAllocator, adopted keep: ([UInt8], SharedCacheEntry) -> Void = { _, _ in }
    ) -> Int {
        var next = 0
        var adopted = 0
        for index in slots.indices {
            guard case .miss(let call, let pending?) = slots[index] else { continue }
            defer { next += 1 }
            guard next < entries.count, let entry = entries[next],
                CacheStage.adopt(entry, for: pending, chain: chain, cache: cache, settings: settings, now: now)
            else { continue }
            slots[index] = .hit(CacheStage.splice(entry.body, answerID: entry.id, callerID: call.id, request: body, allocator: allocator))
            keep(pending.key, entry)
            hits += 1
            adopted += 1
        }
        return adopted
    }

    /// The calls the node must still answer, in order.
    var misses: [RPCCall] {
        var calls: [RPCCall] = []
        calls.reserveCapacity(slots.count - hits)
        for case .miss(let call, _) in slots { calls.append(call) }
        return calls
    }

    /// Some miss is a read about the moving head (its node should be at the head).
    var asksAboutTheHead: Bool {
        slots.contains { if case .miss(_, let pending?) = $0 { pending.lifetime == .untilHead } else { false } }
    }

    /// `tollgate_cache_requests_total{result}` for the batch: a hit when the cache answered
    /// every call, uncacheable when it could answer none of them, else a miss.
    /// Calls answered by another request's trip were misses of the cache.
    var result: CacheResult { hits - joined == slots.count ? .hit : cacheable == 0 ? .uncacheable : .miss }

    /// The answer when the cache holds every call: `[answer, ...]` in the calls' order.
    func answer(allocator: ByteBufferAllocator) -> ByteBuffer {
        var size = 2
        for case .hit(let answer) in slots { size += answer.readableBytes + 1 }
        var output = allocator.buffer(capacity: size)
        output.writeInteger(UInt8(ascii: "["))
        var first = true
        for case .hit(let answer) in slots {
            if !first { output.writeInteger(UInt8(ascii: ",")) }
            first = false
            output.writeImmutableBuffer(answer)
        }
        output.writeInteger(UInt8(ascii: "]"))
        return output
    }

    /// The node's answer to the misses merged with the hits, in the calls' order; each
    /// cacheable answer handed to `keep`. Nil when the node's answer is not a batch of answer
    /// objects: the caller then passes it on as it came. With no hits and every answer in the
    /// calls' order, the node's bytes go on untouched.
    func merge(
        _ response: ByteBuffer, request body: ByteBuffer, allocator: ByteBufferAllocator, keep: (CacheStage.Pending, ByteBuffer) -> Void
    ) -> ByteBuffer? {
        let items: [RPCResponseReader.Item]
        if let read = RPCResponseReader.batchItems(response) {
            items = read
        } else if misses.allSatisfy({ $0.id == nil }), response.readableBytesView.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            items = []  // only notifications went upstream, and a node answers those with nothing
        } else {
            return nil
        }
        // Which answer each slot gets (nil: a hit, a notification, or no answer).
        var used = [Bool](repeating: false, count: items.count)
        var matched: [Int?] = []
        matched.reserveCapacity(slots.count)
        var inOrder = hits == 0
        var expected = 0
        for slot in slots {
            guard case .miss(let call, _) = slot, let id = call.id,
                let index = Self.answer(to: id, of: body, among: items, in: response, used: used)
            else {
                if case .miss(let call, _) = slot, call.id != nil { inOrder = false }
                matched.append(nil)
                continue
            }
            used[index] = true
            inOrder = inOrder && index == expected
            expected += 1
            matched.append(index)
        }
        inOrder = inOrder && expected == items.count
        func object(_ index: Int) -> ByteBuffer {
            response.getSlice(at: response.readerIndex + items[index].span.lowerBound, length: items[index].span.count)!
        }
        for (slot, index) in zip(slots, matched) {
            if case .miss(_, let pending?) = slot, let index, !items[index].isError { keep(pending, object(index)) }
        }
        if inOrder { return response }

        var output = allocator.buffer(capacity: response.readableBytes + slots.count)
        output.writeInteger(UInt8(ascii: "["))
        var first = true
        func comma() {
            if !first { output.writeInteger(UInt8(ascii: ",")) }
            first = false
        }
        for (slot, index) in zip(slots, matched) {
            switch slot {
            case .hit(let answer):
                comma()
                output.writeImmutableBuffer(answer)
            case .miss(let call, _):
                guard let id = call.id else { continue }
                comma()
                if let index {
                    output.writeImmutableBuffer(object(index))
                } else {
                    var missing: [UInt8] = []
                    RPCErrorWriter.append(RPCError(code: RPCError.internalError, message: "the node did not answer this call"), id: id, body: body,
                        to: &missing)
                    output.writeBytes(missing)
                }
            }
        }
        for index in items.indices where !used[index] {
            comma()
            output.writeImmutableBuffer(object(index))
        }
        output.writeInteger(UInt8(ascii: "]"))
        return output
    }

    /// The first answer not yet used whose id has the same bytes as the call's.
    private static func answer(to id: Range<Int>, of body: ByteBuffer, among items: [RPCResponseReader.Item], in response: ByteBuffer, used: [Bool])
        -> Int?
    {
        body.withUnsafeReadableBytes { request in
            let wanted = UnsafeRawBufferPointer(rebasing: request[id])
            return response.withUnsafeReadableBytes { answers in
                items.indices.first { index in
                    !used[index] && items[index].id.count == wanted.count && answers[items[index].id].elementsEqual(wanted)
                }
            }
        }
    }

    /// The node could not answer the misses (an error status, a body that is no batch, a
    /// timeout): the hits still go back, each miss with an error object of its own saying why.
    func answerKeepingHits(_ error: RPCError, request body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var output = allocator.buffer(capacity: 64 * slots.count)
        output.writeInteger(UInt8(ascii: "["))
        var first = true
        for slot in slots {
            switch slot {
            case .hit(let answer):
                if !first { output.writeInteger(UInt8(ascii: ",")) }
                first = false
                output.writeImmutableBuffer(answer)
            case .miss(let call, _):
                guard let id = call.id else { continue }
                if !first { output.writeInteger(UInt8(ascii: ",")) }
                first = false
                var object: [UInt8] = []
                RPCErrorWriter.append(error, id: id, body: body, to: &object)
                output.writeBytes(object)
            }
        }
        output.writeInteger(UInt8(ascii: "]"))
        return output
    }
}
