/// The last few hundred latencies of a pool, for "hedge after the p90" decisions. Quantiles
/// are recomputed every 32 samples, not per request.
struct LatencyWindow {
    private var samples = [Int64](repeating: 0, count: 256)
    private var next = 0
    private var filled = 0
    private var sinceSort = 0
    private var sorted: [Int64] = []

    mutating func add(_ nanoseconds: Int64) {
        samples[next] = nanoseconds
        next = (next + 1) % samples.count
        filled = min(filled + 1, samples.count)
        sinceSort += 1
        if sinceSort >= 32 || sorted.isEmpty {
            // In place, into the array kept from last time: no allocation once it has grown.
            sorted.removeAll(keepingCapacity: true)
            sorted.append(contentsOf: samples[0..<filled])
            sorted.sort()
            sinceSort = 0
        }
    }

    /// Nil until enough samples exist to mean something.
    func quantile(_ q: Double) -> Int64? {
        guard sorted.count >= 32 else { return nil }
        let index = min(sorted.count - 1, max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1))
        return sorted[index]
    }
}
