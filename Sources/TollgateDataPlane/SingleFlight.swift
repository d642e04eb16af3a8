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

    /// The leader's answer (nil: it failed, or was not worth sharing) goes to every waiter.
    func finish(_ key: [UInt8], _ response: UpstreamResponse?) {
        let waiters = waiting.withLock { $0.removeValue(forKey: key) } ?? []
        for waiter in waiters {
            waiter.eventLoop.execute { waiter.deliver(response) }
        }
    }

    /// Keys led right now (tests).
    var inFlight: Int { waiting.withLock { $0.count } }
}
