/// A per-node circuit breaker as a value type: events in, transitions out, clock passed in.
///
/// Closed: every request goes through; the circuit opens after `consecutiveFailures` failures
/// in a row, or when at least `minimumRequests` in the sliding window failed at
/// `failureRate` or more. Open: nothing goes through until `coolDown` has passed. Half-open:
/// up to `probes` requests at a time go through; `successesToClose` successes close the
/// circuit, any failure opens it again.
public struct CircuitBreaker: Sendable, Equatable {
    public struct Settings: Sendable, Equatable {
        public var consecutiveFailures: Int
        public var failureRate: Double
        public var minimumRequests: Int
        /// The sliding window, in whole seconds (one bucket per second).
        public var windowSeconds: Int
        public var coolDown: Duration
        public var probes: Int
        public var successesToClose: Int

        public init(
            consecutiveFailures: Int = 5, failureRate: Double = 0.5, minimumRequests: Int = 20, windowSeconds: Int = 10,
            coolDown: Duration = .seconds(10), probes: Int = 3, successesToClose: Int = 3
        ) {
            self.consecutiveFailures = consecutiveFailures
            self.failureRate = failureRate
            self.minimumRequests = minimumRequests
            self.windowSeconds = max(1, windowSeconds)
            self.coolDown = coolDown
            self.probes = max(1, probes)
            self.successesToClose = max(1, successesToClose)
        }
    }

    public enum State: Sendable, Equatable {
        case closed
        /// Refusing until the monotonic instant `until` (nanoseconds).
        case open(until: Int64)
        case halfOpen(inFlight: Int, successes: Int)

        /// For the `circuit_state` gauge: 0 closed, 1 half-open, 2 open.
        public var gaugeValue: Int {
            switch self {
            case .closed: 0
            case .halfOpen: 1
            case .open: 2
            }
        }
    }

    public enum Transition: Sendable, Equatable {
        case opened, halfOpened, closed
    }

    public let settings: Settings
    public private(set) var state: State = .closed
    private var consecutive = 0
    private var window: SlidingCounts

    public init(settings: Settings = Settings()) {
        self.settings = settings
        self.window = SlidingCounts(seconds: settings.windowSeconds)
    }

    /// Whether a request may go to this node now. A yes in half-open takes a probe slot, to be
    /// given back by `record`.
    public mutating func admit(now: Int64) -> (admitted: Bool, transition: Transition?) {
        switch state {
        case .closed:
            return (true, nil)
        case .open(let until):
            guard now >= until else { return (false, nil) }
            state = .halfOpen(inFlight: 1, successes: 0)
            return (true, .halfOpened)
        case .halfOpen(let inFlight, let successes):
            guard inFlight < settings.probes else { return (false, nil) }
            state = .halfOpen(inFlight: inFlight + 1, successes: successes)
            return (true, nil)
        }
    }

    /// Whether `admit` would say yes, without taking a probe slot (for choosing among nodes).
    public func wouldAdmit(now: Int64) -> Bool {
        switch state {
        case .closed: true
        case .open(let until): now >= until
        case .halfOpen(let inFlight, _): inFlight < settings.probes
        }
    }

    /// An admitted request ended without an outcome (a hedge's cancelled loser): in half-open,
    /// its probe slot is given back.
    public mutating func release() {
        if case .halfOpen(let inFlight, let successes) = state {
            state = .halfOpen(inFlight: max(0, inFlight - 1), successes: successes)
        }
    }

    /// Records the outcome of an admitted request.
    public mutating func record(success: Bool, now: Int64) -> Transition? {
        window.add(success: success, now: now)
        switch state {
        case .closed:
            consecutive = success ? 0 : consecutive + 1
            let (total, failures) = window.totals(now: now)
            let rateTripped = total >= settings.minimumRequests && Double(failures) >= settings.failureRate * Double(total)
            guard consecutive >= settings.consecutiveFailures || rateTripped else { return nil }
            open(now: now)
            return .opened
        case .halfOpen(let inFlight, let successes):
            guard success else {
                open(now: now)
                return .opened
            }
            if successes + 1 >= settings.successesToClose {
                state = .closed
                consecutive = 0
                window = SlidingCounts(seconds: settings.windowSeconds)
                return .closed
            }
            state = .halfOpen(inFlight: max(0, inFlight - 1), successes: successes + 1)
            return nil
        case .open:
            // A straggler admitted before the circuit opened: counted, changes nothing.
            return nil
        }
    }

    private mutating func open(now: Int64) {
        state = .open(until: now + settings.coolDown.nanoseconds)
        consecutive = 0
    }
}

/// Success and failure counts over the last N whole seconds, in a ring of per-second buckets.
struct SlidingCounts: Sendable, Equatable {
    private var seconds: [Int64]
    private var totals: [Int]
    private var failures: [Int]

    init(seconds: Int) {
        self.seconds = Array(repeating: -1, count: seconds)
        self.totals = Array(repeating: 0, count: seconds)
        self.failures = Array(repeating: 0, count: seconds)
    }

    mutating func add(success: Bool, now: Int64) {
        let second = now / 1_000_000_000
        let slot = Int(second % Int64(seconds.count))
        if seconds[slot] != second {
            seconds[slot] = second
            totals[slot] = 0
            failures[slot] = 0
        }
        totals[slot] += 1
        if !success { failures[slot] += 1 }
    }

    func totals(now: Int64) -> (total: Int, failures: Int) {
        let oldest = now / 1_000_000_000 - Int64(seconds.count) + 1
        var total = 0
        var failed = 0
        for index in seconds.indices where seconds[index] >= oldest {
            total += totals[index]
            failed += failures[index]
        }
        return (total, failed)
    }
}
