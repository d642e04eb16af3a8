import TollgateAdmin

/// The last minutes of traffic as rates per interval, from totals sampled every few seconds.
///
/// A pure value: the sampler feeds it totals with the time they were read, the page reads rates.
/// Counters only grow, except when the process restarts (then a sample lower than the one before
/// starts a new series instead of showing a negative rate).
struct TrafficHistory: Sendable {
    struct Sample: Sendable {
        var seconds: Double
        var totals: MetricTotals
    }

    let capacity: Int
    private(set) var samples: [Sample] = []

    /// - Parameter capacity: samples kept; at one per 10 s, 31 show the last 5 minutes.
    init(capacity: Int = 31) {
        self.capacity = max(2, capacity)
    }

    mutating func record(seconds: Double, _ totals: MetricTotals) {
        if let last = samples.last, totals.requests < last.totals.requests { samples.removeAll() }
        samples.append(Sample(seconds: seconds, totals: totals))
        if samples.count > capacity { samples.removeFirst(samples.count - capacity) }
    }

    /// One entry per interval between consecutive samples, oldest first, aged against `now`.
    func rates(now: Double) -> [StatusSnapshot.Traffic] {
        zip(samples, samples.dropFirst()).compactMap { before, after in
            let span = after.seconds - before.seconds
            guard span > 0 else { return nil }
            let lookups = after.totals.cacheLookups - before.totals.cacheLookups
            return StatusSnapshot.Traffic(
                secondsAgo: max(0, Int((now - after.seconds).rounded())),
                requestsPerSecond: (after.totals.requests - before.totals.requests) / span,
                errorsPerSecond: (after.totals.errors - before.totals.errors) / span,
                rateLimitedPerSecond: (after.totals.rateLimited - before.totals.rateLimited) / span,
                cacheHitRatio: lookups > 0 ? (after.totals.cacheHits - before.totals.cacheHits) / lookups : nil)
        }
    }
}
