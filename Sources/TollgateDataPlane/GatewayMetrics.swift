import CoreMetrics
import TollgateCore

/// The gateway's metrics (names from the design note), with handles cached per event loop.
///
/// Creating a swift-metrics handle asks the factory, which locks its registry; caching the
/// handle per loop and label set means a request only increments atomics it already holds.
/// Label values are bounded: methods outside `knownMethods` are recorded as `other`.
public final class GatewayMetrics: Sendable {
    let factory: any MetricsFactory
    let knownMethods: Set<String>

    public init(factory: any MetricsFactory, knownMethods: Set<String>) {
        self.factory = factory
        self.knownMethods = knownMethods
    }

    /// Histogram buckets for the two request-duration histograms; the App hands these to the
    /// Prometheus factory. Overhead buckets resolve tens of microseconds.
    public static let overheadBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(100),
    ]
    public static let durationBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30),
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
        var requests = HandleCache<RequestLabels, Counter>()
        var durations = HandleCache<String, Timer>()
        var overhead: Timer?
        var upstreamRequests = HandleCache<TripleLabels, Counter>()
        var upstreamDurations = HandleCache<PairLabels, Timer>()
        var rejections = HandleCache<PairLabels, Counter>()
        var authFailures = HandleCache<String, Counter>()
        var keyCache = HandleCache<String, Counter>()
        var computeUnits = HandleCache<PairLabels, Counter>()
        var hedges = HandleCache<String, Counter>()
        var cache = HandleCache<TripleLabels, Counter>()
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
        var wire: Counter
        var decoded: Counter
    }

    func bodyBytes(_ cache: inout HandleCache<PairLabels, BodyBytes>, _ name: StaticString, network: String, coding: String) -> BodyBytes {
        cache.handle(PairLabels(first: network, second: coding)) {
            let dimensions = [("network", network), ("encoding", coding)]
            return BodyBytes(wire: Counter(label: "tollgate_\(name)_bytes_total", dimensions: dimensions, factory: factory),
                decoded: Counter(label: "tollgate_\(name)_decoded_bytes_total", dimensions: dimensions, factory: factory))
        }
    }
}

/// A body's size on the wire and decoded, and its coding's name.
struct BodySize {
    var coding: String = "identity"
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

    func overheadTimer(_ handles: inout LoopHandles) -> Timer {
        if let overhead = handles.overhead { return overhead }
        let overhead = Timer(label: "tollgate_gateway_overhead_seconds", dimensions: [], factory: factory)
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

    func timer<K: Hashable>(
        _ cache: inout HandleCache<K, Timer>, _ key: K, _ label: String, _ dimensions: @autoclosure () -> [(String, String)]
    ) -> Timer {
        cache.handle(key) { Timer(label: label, dimensions: dimensions(), factory: factory) }
    }
}
