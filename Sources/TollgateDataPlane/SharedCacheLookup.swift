import NIOCore
import TollgateCore
import TollgateUpstream

/// Stage 5c, the shared (L2) response cache, for a single call the in-process cache missed:
/// one lookup, bounded by `ResponseCacheSettings.sharedTimeout`, back on the request's loop.
/// A hit is kept in the in-process cache and answered with the caller's id; a miss, an error,
/// a late answer or an entry bound to another head goes to the node as if there were no L2.
/// Only the single-flight leader asks: identical requests waiting on it get its answer.
enum SharedCacheLookup {
    /// Calls `then` exactly once on `loop`: with the entry, or nil on a miss or after `timeout`.
    static func fetch(
        _ shared: any SharedResponseCache, network: String, key: [UInt8], timeout: TimeAmount, on loop: any EventLoop,
        then: @escaping (SharedCacheEntry?) -> Void
    ) {
        let settled = NIOLoopBoundBox(false, eventLoop: loop)
        let timer = loop.assumeIsolated().scheduleTask(in: timeout) {
            guard !settled.value else { return }
            settled.value = true
            then(nil)
        }
        loop.makeFutureWithTask { await shared.fetch(network: network, key: key) }.assumeIsolated().whenSuccess { entry in
            timer.cancel()
            guard !settled.value else { return }
            settled.value = true
            then(entry)
        }
    }

    /// A batch's keys, asked at once (pipelined on the client's connections); `then` gets one
    /// entry or nil per key, in order, or all nil after `timeout`.
    static func fetchMany(
        _ shared: any SharedResponseCache, network: String, keys: [[UInt8]], timeout: TimeAmount, on loop: any EventLoop,
        then: @escaping ([SharedCacheEntry?]) -> Void
    ) {
        let settled = NIOLoopBoundBox(false, eventLoop: loop)
        let count = keys.count
        let timer = loop.assumeIsolated().scheduleTask(in: timeout) {
            guard !settled.value else { return }
            settled.value = true
            then(Array(repeating: nil, count: count))
        }
        loop.makeFutureWithTask {
            await withTaskGroup(of: (Int, SharedCacheEntry?).self) { group in
                for (index, key) in keys.enumerated() { group.addTask { (index, await shared.fetch(network: network, key: key)) } }
                var entries = [SharedCacheEntry?](repeating: nil, count: count)
                for await (index, entry) in group { entries[index] = entry }
                return entries
            }
        }.assumeIsolated().whenSuccess { entries in
            timer.cancel()
            guard !settled.value else { return }
            settled.value = true
            then(entries)
        }
    }

    /// The leader's shared hit as the answer its single-flight waiters splice their ids into.
    static func sharedAnswer(_ entry: SharedCacheEntry) -> UpstreamResponse {
        UpstreamResponse(status: .ok, body: entry.body, node: "", attempts: 0, upstreamNanos: 0)
    }
}
