import TollgateHTTP1

/// Every metric handle one kind of finished request touches, found with one comparison.
///
/// Looking up each metric's handle by its own labels costs a comparison and a handle copy per
/// metric, about ten per request (`bench/profile`). Traffic repeats itself (same network,
/// method, plan, status, node, codings), so the recorder keeps the whole set for the last
/// request's `Shape` and a repeat finds all of its handles at once; a different shape is
/// assembled from the per-metric caches in `GatewayMetrics.LoopHandles`, which stay the source.
struct RequestMetricSet {
    /// The label values of the metrics a forwarded or answered request records.
    struct Shape: Equatable {
        var network: String
        var method: String
        var status: Int
        var plan: String
        /// The node and outcome, when the request went upstream.
        var upstream: String?
        var outcome: UpstreamOutcome?
        /// nil when no answer was needed.
        var cache: CacheResult?
        /// How the key was found, when one was looked up.
        var keyCache: KeyCacheResult?
        var requestCoding: HTTP1ContentCoding
        var responseCoding: HTTP1ContentCoding

        /// `self == Shape(...)` without making the shape: a made one retains and releases
        /// each of its strings, and nearly every request repeats the last one's shape.
        func matches(
            network: borrowing String, method: borrowing String, status: Int, plan: borrowing String, upstream: borrowing String?,
            outcome: UpstreamOutcome?, cache: CacheResult?, keyCache: KeyCacheResult?, requestCoding: HTTP1ContentCoding,
            responseCoding: HTTP1ContentCoding
        ) -> Bool {
            self.status == status && self.network == network && self.method == method && self.plan == plan && self.upstream == upstream
                && self.outcome == outcome && self.cache == cache && self.keyCache == keyCache && self.requestCoding == requestCoding
                && self.responseCoding == responseCoding
        }

        /// Before the first request: equal to no request's shape (no status is -1).
        static let none = Shape(
            network: "", method: "", status: -1, plan: "", upstream: nil, outcome: nil, cache: nil, keyCache: nil,
            requestCoding: .identity, responseCoding: .identity)
    }

    var requests: LoopCounter
    var duration: LoopHistogram
    var overhead: LoopHistogram
    var upstream: LoopCounter?
    /// Only for `ok` outcomes: failures' times are not node latencies.
    var upstreamDuration: LoopHistogram?
    var cache: LoopCounter?
    var keyCache: LoopCounter?
    var computeUnits: LoopCounter
    var requestBytes: GatewayMetrics.BodyBytes
    var responseBytes: GatewayMetrics.BodyBytes
}

extension GatewayMetrics {
    /// Lends `body` the handles for the shape these labels make: the last set when the labels
    /// match the last shape (compared in place, `Shape.matches`), else one assembled from the
    /// per-metric caches and kept as the last. Lent, not returned: a copy would retain and
    /// release every handle in it.
    func withHandles(
        _ handles: inout LoopHandles, network: String, method: String, status: Int, plan: String, upstream: String?,
        outcome: UpstreamOutcome?, cache: CacheResult?, keyCache: KeyCacheResult?, requestCoding: HTTP1ContentCoding,
        responseCoding: HTTP1ContentCoding, _ body: (inout RequestMetricSet) -> Void
    ) {
        guard handles.lastSet != nil,
            handles.lastShape.matches(network: network, method: method, status: status, plan: plan, upstream: upstream, outcome: outcome,
                cache: cache, keyCache: keyCache, requestCoding: requestCoding, responseCoding: responseCoding)
        else {
            let shape = RequestMetricSet.Shape(network: network, method: method, status: status, plan: plan, upstream: upstream, outcome: outcome,
                cache: cache, keyCache: keyCache, requestCoding: requestCoding, responseCoding: responseCoding)
            handles.lastSet = assemble(&handles, shape)
            handles.lastShape = shape
            return body(&handles.lastSet!)
        }
        // In place (an inout force-unwrap): a value passed on would be a copy of every handle.
        body(&handles.lastSet!)
    }

    private func assemble(_ handles: inout LoopHandles, _ shape: RequestMetricSet.Shape) -> RequestMetricSet {
        let network = shape.network
        var set = RequestMetricSet(
            requests: counter(&handles.requests, RequestLabels(network: network, method: shape.method, status: shape.status, plan: shape.plan),
                "tollgate_requests_total",
                [("network", network), ("method", shape.method), ("status", String(shape.status)), ("plan", shape.plan)]),
            duration: histogram(&handles.durations, network, "tollgate_request_duration_seconds", bounds: Self.durationBounds,
                [("network", network)]),
            overhead: overheadHistogram(&handles),
            computeUnits: counter(&handles.computeUnits, PairLabels(first: network, second: shape.plan), "tollgate_compute_units_total",
                [("network", network), ("plan", shape.plan)]),
            requestBytes: bodyBytes(&handles.requestBytes, "request", network: network, coding: shape.requestCoding.name),
            responseBytes: bodyBytes(&handles.responseBytes, "response", network: network, coding: shape.responseCoding.name))
        if let outcome = shape.outcome?.label {
            let node = shape.upstream ?? "none"
            set.upstream = counter(&handles.upstreamRequests, TripleLabels(first: network, second: node, third: outcome),
                "tollgate_upstream_requests_total", [("network", network), ("upstream", node), ("outcome", outcome)])
            if shape.outcome == .ok {
                set.upstreamDuration = histogram(&handles.upstreamDurations, PairLabels(first: network, second: node),
                    "tollgate_upstream_duration_seconds", bounds: Self.durationBounds, [("network", network), ("upstream", node)])
            }
        }
        if let result = shape.cache?.label {
            set.cache = counter(&handles.cache, TripleLabels(first: network, second: shape.method, third: result),
                "tollgate_cache_requests_total", [("network", network), ("method", shape.method), ("result", result)])
        }
        if let result = shape.keyCache?.label {
            set.keyCache = counter(&handles.keyCache, result, "tollgate_keycache_requests_total", [("result", result)])
        }
        return set
    }
}
