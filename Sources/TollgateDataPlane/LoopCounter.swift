import Synchronization

/// A counter that one event loop writes and a scrape reads.
///
/// swift-prometheus's counter, behind swift-metrics' existential handler, adds with a locked
/// instruction because any thread may write it, and its histogram takes a lock and walks every
/// bucket. A request touches about eight counters and three histograms, and with those handles
/// the recorder cost about 1.2 µs of a forwarded request's 20 µs (`docs/benchmarks.md`, eighth
/// session). A cell here belongs to one loop (`GatewayMetrics.LoopHandles` makes it), so the
/// loop adds with a relaxed load and store, which are plain moves, and `RequestMetricStore`
/// sums every loop's cells when it is scraped.
final class LoopCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// Only from the loop that made this counter: two writers would lose each other's adds.
    @inline(__always)
    func increment(by amount: Int = 1) {
        count.store(count.load(ordering: .relaxed) &+ amount, ordering: .relaxed)
    }

    var value: Int { count.load(ordering: .relaxed) }
}
