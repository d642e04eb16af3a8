import NIOCore
import TollgateUpstream

/// A batch's part in single flight. When no other request has any of its cacheable misses in
/// flight, the batch leads them all: its one trip upstream answers every request that asks
/// for one of those calls meanwhile, single calls and other batches alike. When some are in
/// flight, it joins those requests (bounded by `SingleFlight.maxWait`), leads nothing while it
/// waits, then sends what is still missing in one trip, leading what is free by then.
///
/// Waiting before its own trip, not beside it, keeps a batch to one trip, and a request that
/// waits never leads (so two batches cannot wait on each other). The case it is for, the same
/// batch polled by many clients at once, then sends nothing at all; a batch that both joins
/// and has calls of its own pays the wait before its own trip.
enum BatchFlight {
    /// What `enter` decided.
    struct Entry {
        /// The keys this batch leads: their answers go to the waiters (`Forwarding` finishes them).
        var led: Set<[UInt8]>
        /// Set when the batch joined others: start it, and go on when it hands the batch back.
        var wait: BatchFlightWait?
    }

    static func enter(
        _ batch: BatchCache, flight: SingleFlight, request body: ByteBuffer, allocator: ByteBufferAllocator, on eventLoop: any EventLoop
    ) -> Entry {
        var indices: [Int] = []
        var keys: [[UInt8]] = []
        for (index, slot) in batch.slots.enumerated() {
            guard case .miss(_, let pending?) = slot else { continue }
            indices.append(index)
            keys.append(pending.key)
        }
        var wait: BatchFlightWait?
        let joined = flight.enter(batch: keys) { position in
            let waiting = wait ?? BatchFlightWait(batch, request: body, allocator: allocator, eventLoop: eventLoop)
            wait = waiting
            waiting.outstanding += 1
            let slot = indices[position]
            let bound = NIOLoopBound(waiting, eventLoop: eventLoop)
            return .init(eventLoop: eventLoop, deliver: { bound.value.delivered(slot, $0) })
        }
        guard joined != nil else { return Entry(led: Set(keys), wait: nil) }
        return Entry(led: [], wait: wait)
    }

    /// After a wait: leads the still-missing keys nobody has in flight now.
    static func leadRest(_ batch: BatchCache, flight: SingleFlight) -> Set<[UInt8]> {
        let keys = batch.sharedKeys
        return keys.isEmpty ? [] : flight.leadFree(keys)
    }

    /// The waiters' answer for one of a batch's calls: the batch's answer object for it.
    static func answer(_ object: ByteBuffer, of response: UpstreamResponse) -> UpstreamResponse {
        var one = UpstreamResponse(status: .ok, body: object, node: response.node, attempts: 0, upstreamNanos: 0)
        one.nodeHead = response.nodeHead
        return one
    }
}

/// A batch waiting on the requests that lead some of its calls: each answer that comes (with
/// the batch call's own id spliced in) turns its call into a hit; when all have come, or
/// `maxWait` passed, the batch goes on with what it has. Lives on the request's loop.
final class BatchFlightWait {
    private(set) var batch: BatchCache
    fileprivate(set) var outstanding = 0
    private let body: ByteBuffer
    private let allocator: ByteBufferAllocator
    private let eventLoop: any EventLoop
    private var then: ((BatchCache) -> Void)?
    private var timer: Scheduled<Void>?

    init(_ batch: BatchCache, request body: ByteBuffer, allocator: ByteBufferAllocator, eventLoop: any EventLoop) {
        self.batch = batch
        self.body = body
        self.allocator = allocator
        self.eventLoop = eventLoop
    }

    /// Answers are delivered on the loop after the current task, so this comes first.
    func start(maxWait: TimeAmount, then: @escaping (BatchCache) -> Void) {
        self.then = then
        timer = eventLoop.assumeIsolated().scheduleTask(in: maxWait) { self.finish() }
    }

    /// A leader's answer for the call at `index` (nil: it failed; the call stays a miss).
    func delivered(_ index: Int, _ response: UpstreamResponse?) {
        guard then != nil else { return }
        if let response, case .miss(let call, _) = batch.slots[index],
            let mine = CacheStage.shared(response, callerID: call.id, request: body, allocator: allocator)
        {
            batch.join(index, answer: mine.body)
        }
        outstanding -= 1
        if outstanding == 0 { finish() }
    }

    private func finish() {
        timer?.cancel()
        timer = nil
        guard let next = then else { return }
        then = nil
        next(batch)
    }
}
