/// Retries allowed as a share of recent requests, so a sick pool does not melt under a retry
/// storm: at most `ratio` retries per request over the sliding window, plus a small floor of
/// `minimumPerSecond` so that a quiet pool can still retry at all.
public struct RetryBudget: Sendable, Equatable {
    public let ratio: Double
    public let minimumPerSecond: Int
    private let windowSeconds: Int
    private var requests: SlidingCounts
    private var retries: SlidingCounts

    public init(ratio: Double = 0.2, minimumPerSecond: Int = 10, windowSeconds: Int = 10) {
        self.ratio = ratio
        self.minimumPerSecond = minimumPerSecond
        self.windowSeconds = max(1, windowSeconds)
        self.requests = SlidingCounts(seconds: self.windowSeconds)
        self.retries = SlidingCounts(seconds: self.windowSeconds)
    }

    /// Counts a first attempt.
    public mutating func recordRequest(now: Int64) {
        requests.add(success: true, now: now)
    }

    /// Takes a retry if the budget allows it.
    public mutating func tryRetry(now: Int64) -> Bool {
        let made = requests.totals(now: now).total
        let retried = retries.totals(now: now).total
        let allowed = Int(Double(made) * ratio) + minimumPerSecond * windowSeconds
        guard retried < allowed else { return false }
        retries.add(success: true, now: now)
        return true
    }
}
