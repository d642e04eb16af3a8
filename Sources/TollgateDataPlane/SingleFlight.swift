import NIOCore
import Synchronization
import TollgateUpstream

/// Identical cacheable requests in flight at once go upstream once: the first leads, the
/// others wait for its answer (each gets it with its own `id` spliced in), for at most
/// `maxWait`, after which a waiter goes upstream itself. A leader that fails hands nothing on:
/// its waiters go themselves, so one bad node answer is not multiplied.
///
/// Shared by every event loop (a key is led once process-wide); a waiter is called back on its
/// own loop.
final class SingleFlight: Sendable {
    struct Waiter: Sendable {
        let eventLoop: any EventLoop
        /// The leader's answer, or nil when the waiter must go itself. Called on `eventLoop`.
        let deliver: @Sendable (UpstreamResponse?) -> Void
    }

    let maxWait: TimeAmount
    private let waiting = Mutex<[[UInt8]: [Waiter]]>([:])

    init(maxWait: TimeAmount = .seconds(2)) { self.maxWait = maxWait }

    /// True: the caller leads (goes upstream and must call `finish`). False: `waiter` waits.
    func lead(_ key: [UInt8], orWait waiter: @autoclosure () -> Waiter) -> Bool {
        waiting.withLock { table in
            if table[key] == nil {
                table[key] = []
                return true
            }
            table[key]!.append(waiter())
            return false
        }
    }

    /// A batch's cacheable misses, under one lock: when none of `keys` is in flight, the batch
    /// leads them all (returns nil); otherwise it joins the requests leading those that are
    /// (`waiter(index)` for each) and leads none, returning the indices it joined.
    ///
    /// All or nothing, so that a request that waits never leads: two batches holding each
    /// other's keys would otherwise wait on each other until `maxWait`.
    func enter(batch keys: [[UInt8]], waiter: (Int) -> Waiter) -> [Int]? {
        waiting.withLock { table in
            let joined = keys.indices.filter { table[keys[$0]] != nil }
            if joined.isEmpty {
                for key in keys where table[key] == nil { table[key] = [] }
                return nil
            }
            for index in joined { table[keys[index]]!.append(waiter(index)) }
            return joined
        }
    }

    /// Leads those of `keys` nobody has in flight, without waiting on the others (a batch
    /// that has waited once sends what is left at once); the keys it now leads.
    func leadFree(_ keys: [[UInt8]]) -> Set<[UInt8]> {
        waiting.withLock { table in
            var led = Set<[UInt8]>()
            for key in keys where table[key] == nil {
                table[key] = []
                led.insert(key)
            }
            return led
        }
    }

    /// Requests waiting on a leader now (tests await it rather than sleeping).
    var waiterCount: Int { waiting.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// The leader's answer (nil: it failed, or was not worth sharing) goes to every waiter.
    func finish(_ key: [UInt8], _ response: UpstreamResponse?) {
        let waiters = waiting.withLock { $0.removeValue(forKey: key) } ?? []
        for waiter in waiters {
            waiter.eventLoop.execute { waiter.deliver(response) }
        }
    }
}

/// A request waiting on another's identical one (single flight): the leader's answer with this
/// request's id, or after `SingleFlight.maxWait` (or a leader that failed) its own trip upstream.
final class SingleFlightWaiter {
    let flight: SingleFlight
    let upstream: UpstreamRequest
    let pool: any UpstreamPool
    let callerID: Range<Int>?
    let request: ByteBuffer
    let allocator: ByteBufferAllocator
    private var responder: (any UpstreamResponder)?
    private var timer: Scheduled<Void>?

    init(flight: SingleFlight, upstream: UpstreamRequest, pool: any UpstreamPool, callerID: Range<Int>?, request: ByteBuffer, allocator: ByteBufferAllocator) {
        self.flight = flight
        self.upstream = upstream
        self.pool = pool
        self.callerID = callerID
        self.request = request
        self.allocator = allocator
    }

    func start(responder: any UpstreamResponder, on eventLoop: any EventLoop) {
        self.responder = responder
        timer = eventLoop.assumeIsolated().scheduleTask(in: flight.maxWait) { self.delivered(nil) }
    }

    /// The leader's answer (nil: go yourself); only the first call counts.
    func delivered(_ response: UpstreamResponse?) {
        guard let responder else { return }
        self.responder = nil
        timer?.cancel()
        timer = nil
        if let response, let mine = CacheStage.shared(response, callerID: callerID, request: request, allocator: allocator) {
            responder.upstreamAnswered(.success(mine))
        } else {
            pool.execute(upstream, responder: responder)
        }
    }
}
