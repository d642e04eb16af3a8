import CoreMetrics
import TollgateCore
import TollgateHTTP1

/// The gateway's metrics (names from the design note), with handles cached per event loop.
///
/// What every request records (requests, durations, bytes, compute units, the upstream and
/// cache outcomes) goes into cells of this loop's own in `store` (`RequestMetricStore`), which
/// the app adds to `/metrics`; rarer events (refusals, hedges, WebSockets) go through the
/// swift-metrics `factory`, whose handles are cached per loop too where they can repeat.
/// Label values are bounded: methods outside `knownMethods` are recorded as `other`.
public final class GatewayMetrics: Sendable {
    let factory: any MetricsFactory
    let knownMethods: Set<String>
    /// The request path's families, for the app's `/metrics` (`store.exposition()`).
    public let store: RequestMetricStore

    public init(factory: any MetricsFactory, knownMethods: Set<String>, store: RequestMetricStore = RequestMetricStore()) {
        self.factory = factory
        self.knownMethods = knownMethods
        self.store = store
    }

    /// Upper bounds (`le`) of the overhead histogram in nanoseconds: tens of microseconds.
    static let overheadBounds: [Int64] = [
        10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 100_000_000,
    ]
    /// Upper bounds of the request and upstream duration histograms in nanoseconds.
    static let durationBounds: [Int64] = [
        250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000,
        500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000, 30_000_000_000,
    ]

    struct RequestLabels: Hashable {
        var network: String
        var method: String
        var status: Int
        var plan: String
    }

    struct PairLabels: Hashable {
        var first: String
        var second: String
    }

    struct TripleLabels: Hashable {
        var first: String
        var second: String
        var third: String
    }

    /// One metric's handles on one loop, by label values, with the last one used in front:
    /// traffic repeats its labels (same network, method, plan, status), so most requests find
    /// their handle by comparing a few small strings, without hashing them.
    struct HandleCache<Key: Hashable, Handle> {
        var entries: [Key: Handle] = [:]
        var lastKey: Key?
        var last: Handle?

        mutating func handle(_ key: Key, make: () -> Handle) -> Handle {
            if let last, lastKey == key { return last }
            let handle: Handle
            if let known = entries[key] {
                handle = known
            } else {
                handle = make()
                entries[key] = handle
            }
            lastKey = key
            last = handle
            return handle
        }
    }

    struct LoopHandles {
        var requests = HandleCache<RequestLabels, LoopCounter>()
        var durations = HandleCache<String, LoopHistogram>()
        var overhead: LoopHistogram?
        var upstreamRequests = HandleCache<TripleLabels, LoopCounter>()
        var upstreamDurations = HandleCache<PairLabels, LoopHistogram>()
        var rejections = HandleCache<PairLabels, Counter>()
        var authFailures = HandleCache<String, Counter>()
        var keyCache = HandleCache<String, LoopCounter>()
        var computeUnits = HandleCache<PairLabels, LoopCounter>()
        var hedges = HandleCache<String, Counter>()
        var cache = HandleCache<TripleLabels, LoopCounter>()
        var requestBytes = HandleCache<PairLabels, BodyBytes>()
        var responseBytes = HandleCache<PairLabels, BodyBytes>()
        /// The last request's whole set (`RequestMetricSet`), in front of the caches above.
        /// Not optional: a shape compared with an optional one is first copied into one.
        var lastShape = RequestMetricSet.Shape.none
        var lastSet: RequestMetricSet?
    }

    /// Bodies by content coding: bytes on the wire and the same bodies decoded, whose ratio
    /// is what compression saves.
    struct BodyBytes {
        var wire: LoopCounter
        var decoded: LoopCounter
    }

    func bodyBytes(_ cache: inout HandleCache<PairLabels, BodyBytes>, _ name: StaticString, network: String, coding: String) -> BodyBytes {
        cache.handle(PairLabels(first: network, second: coding)) {
            let dimensions = [("network", network), ("encoding", coding)]
            return BodyBytes(wire: store.counter("tollgate_\(name)_bytes_total", dimensions),
                decoded: store.counter("tollgate_\(name)_decoded_bytes_total", dimensions))
        }
    }
}

/// A body's size on the wire and decoded, and its coding's name.
struct BodySize {
    var coding = HTTP1ContentCoding.identity
    var wire = 0
    var decoded = 0
}

extension GatewayMetrics {
    /// Creates the counters that start at zero and may stay there for a long time (hedges), so
    /// dashboards and `rate()` see them from the first scrape instead of after the first event.
    public func prime(networks: [String]) {
        for network in networks {
            _ = Counter(label: "tollgate_upstream_hedges_total", dimensions: [("network", network)], factory: factory)
        }
    }

    func methodLabel(_ method: String) -> String { knownMethods.contains(method) ? method : "other" }

    func overheadHistogram(_ handles: inout LoopHandles) -> LoopHistogram {
        if let overhead = handles.overhead { return overhead }
        let overhead = store.histogram("tollgate_gateway_overhead_seconds", [], bounds: Self.overheadBounds)
        handles.overhead = overhead
        return overhead
    }

    func hedged(_ handles: inout LoopHandles, network: String) {
        counter(&handles.hedges, network, "tollgate_upstream_hedges_total", [("network", network)]).increment()
    }

    func rateLimited(_ handles: inout LoopHandles, plan: String, kind: String) {
        counter(&handles.rejections, PairLabels(first: plan, second: kind), "tollgate_ratelimit_rejections_total",
            [("plan", plan), ("kind", kind)]).increment()
    }

    /// A connection refused at accept for passing `server.max_connections` or
    /// `max_connections_per_ip` (rare, so the counter is looked up each time).
    func connectionRefused(reason: String) {
        Counter(label: "tollgate_connections_refused_total", dimensions: [("reason", reason)], factory: factory).increment()
    }

    /// WebSockets open and close rarely next to requests: their handles are looked up each time.
    func webSocketOpened(network: String) {
        Meter(label: "tollgate_ws_connections", dimensions: [("network", network)], factory: factory).increment()
    }

    func webSocketClosed(network: String) {
        Meter(label: "tollgate_ws_connections", dimensions: [("network", network)], factory: factory).decrement()
    }

    func webSocketSubscriptions(network: String, kind: String, change: Int) {
        let meter = Meter(label: "tollgate_ws_subscriptions", dimensions: [("network", network), ("kind", kind)], factory: factory)
        if change > 0 { meter.increment(by: Double(change)) } else { meter.decrement(by: Double(-change)) }
    }

    func webSocketEvents(network: String, kind: String, count: Int) {
        Counter(label: "tollgate_ws_events_total", dimensions: [("network", network), ("kind", kind)], factory: factory).increment(by: count)
    }

    func webSocketBackfilled(network: String, kind: String, count: Int) {
        Counter(label: "tollgate_ws_backfilled_total", dimensions: [("network", network), ("kind", kind)], factory: factory).increment(by: count)
    }

    func webSocketSlowConsumer() {
        Counter(label: "tollgate_ws_slow_consumer_closes_total", dimensions: [], factory: factory).increment()
    }

    func authFailure(_ handles: inout LoopHandles, reason: String) {
        counter(&handles.authFailures, reason, "tollgate_auth_failures_total", [("reason", reason)]).increment()
    }

    func keyCache(_ handles: inout LoopHandles, result: String) {
        counter(&handles.keyCache, result, "tollgate_keycache_requests_total", [("result", result)]).increment()
    }

    func counter<K: Hashable>(
        _ cache: inout HandleCache<K, Counter>, _ key: K, _ label: String, _ dimensions: @autoclosure () -> [(String, String)]
    ) -> Counter {
        cache.handle(key) { Counter(label: label, dimensions: dimensions(), factory: factory) }
    }

    func counter<K: Hashable>(
        _ cache: inout HandleCache<K, LoopCounter>, _ key: K, _ label: String, _ dimensions: @autoclosure () -> [(String, String)]
    ) -> LoopCounter {
        cache.handle(key) { store.counter(label, dimensions()) }
    }

    func histogram<K: Hashable>(
        _ cache: inout HandleCache<K, LoopHistogram>, _ key: K, _ label: String, bounds: [Int64],
        _ dimensions: @autoclosure () -> [(String, String)]
    ) -> LoopHistogram {
        cache.handle(key) { store.histogram(label, dimensions(), bounds: bounds) }
    }
}
