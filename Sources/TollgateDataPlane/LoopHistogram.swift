import Synchronization

/// A latency histogram that one event loop writes and a scrape reads (see `LoopCounter` for
/// why not swift-prometheus's): a count per bucket, not cumulative, so an observation adds to
/// one cell found by comparing nanoseconds, and the scrape makes the counts cumulative.
final class LoopHistogram: @unchecked Sendable {
    /// Upper bounds in nanoseconds, ascending (Prometheus `le`); above the last is `+Inf`.
    let bounds: [Int64]
    // @unchecked: the buffers are made in init and freed in deinit; every access is atomic.
    private let upper: UnsafeMutablePointer<Int64>
    private let counts: UnsafeMutablePointer<Atomic<Int>>
    private let total = Atomic<Int64>(0)

    init(bounds: [Int64]) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "histogram bounds must ascend")
        self.bounds = bounds
        upper = .allocate(capacity: max(1, bounds.count))
        upper.initialize(from: bounds, count: bounds.count)
        counts = .allocate(capacity: bounds.count + 1)
        for index in 0...bounds.count { (counts + index).initialize(to: Atomic(0)) }
    }

    deinit {
        counts.deinitialize(count: bounds.count + 1)
        counts.deallocate()
        upper.deinitialize(count: bounds.count)
        upper.deallocate()
    }

    /// Only from the loop that made this histogram.
    @inline(__always)
    func recordNanoseconds(_ nanoseconds: Int64) {
        let last = bounds.count
        var index = 0
        while index < last, nanoseconds > upper[index] { index += 1 }
        counts[index].store(counts[index].load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        total.store(total.load(ordering: .relaxed) &+ nanoseconds, ordering: .relaxed)
    }

    /// The count in each bucket (not cumulative; the last is above every bound) and the sum.
    func snapshot() -> (counts: [Int], sumNanos: Int64) {
        ((0...bounds.count).map { counts[$0].load(ordering: .relaxed) }, total.load(ordering: .relaxed))
    }
}
