import Testing
@testable import TollgateDataPlane

/// The request path's own metric cells and their exposition: what `/metrics` shows must be
/// what swift-prometheus showed for the same families (dashboards and alerts read it).
@Suite struct RequestMetricStoreTests {
    @Test func eachLoopsCellsAddUpToOneSeries() {
        let store = RequestMetricStore()
        let labels = [("network", "ethereum"), ("plan", "free")]
        let first = store.counter("tollgate_compute_units_total", labels)
        let second = store.counter("tollgate_compute_units_total", labels)
        let other = store.counter("tollgate_compute_units_total", [("network", "base"), ("plan", "free")])
        first.increment(by: 5)
        second.increment(by: 7)
        second.increment()
        other.increment(by: 2)
        let text = store.exposition()
        #expect(text == """
            # TYPE tollgate_compute_units_total counter
            tollgate_compute_units_total{network="ethereum",plan="free"} 13
            tollgate_compute_units_total{network="base",plan="free"} 2

            """)
    }

    @Test func aHistogramIsCumulativeWithLeInclusive() {
        let store = RequestMetricStore()
        let bounds: [Int64] = [250_000, 1_000_000, 2_500_000_000]
        let a = store.histogram("tollgate_request_duration_seconds", [("network", "ethereum")], bounds: bounds)
        let b = store.histogram("tollgate_request_duration_seconds", [("network", "ethereum")], bounds: bounds)
        a.recordNanoseconds(250_000)  // on the bound: counts in it (le)
        a.recordNanoseconds(250_001)
        b.recordNanoseconds(100)
        b.recordNanoseconds(3_000_000_000)  // above every bound: +Inf only
        let text = store.exposition()
        #expect(text == """
            # TYPE tollgate_request_duration_seconds histogram
            tollgate_request_duration_seconds_bucket{network="ethereum",le="0.00025"} 2
            tollgate_request_duration_seconds_bucket{network="ethereum",le="0.001"} 3
            tollgate_request_duration_seconds_bucket{network="ethereum",le="2.5"} 3
            tollgate_request_duration_seconds_bucket{network="ethereum",le="+Inf"} 4
            tollgate_request_duration_seconds_sum{network="ethereum"} 3.000500101
            tollgate_request_duration_seconds_count{network="ethereum"} 4

            """)
    }

    @Test func aFamilyWithoutLabels() {
        let store = RequestMetricStore()
        store.histogram("tollgate_gateway_overhead_seconds", [], bounds: [10_000]).recordNanoseconds(12_000)
        store.counter("tollgate_things_total", []).increment(by: 3)
        #expect(store.exposition() == """
            # TYPE tollgate_gateway_overhead_seconds histogram
            tollgate_gateway_overhead_seconds_bucket{le="0.00001"} 0
            tollgate_gateway_overhead_seconds_bucket{le="+Inf"} 1
            tollgate_gateway_overhead_seconds_sum 0.000012
            tollgate_gateway_overhead_seconds_count 1
            # TYPE tollgate_things_total counter
            tollgate_things_total 3

            """)
    }

    @Test func secondsAreWrittenAsSwiftPrometheusWritesDurations() {
        #expect(RequestMetricStore.seconds(0) == "0.0")
        #expect(RequestMetricStore.seconds(10_000) == "0.00001")
        #expect(RequestMetricStore.seconds(250_000) == "0.00025")
        #expect(RequestMetricStore.seconds(1_000_000_000) == "1.0")
        #expect(RequestMetricStore.seconds(2_500_000_000) == "2.5")
        #expect(RequestMetricStore.seconds(30_000_000_000) == "30.0")
        #expect(RequestMetricStore.seconds(1_000_000_001) == "1.000000001")
        #expect(RequestMetricStore.seconds(6_974_648) == "0.006974648")
    }

    @Test func labelValuesAreEscaped() {
        #expect(RequestMetricStore.render([("upstream", #"a"b\c"# + "\n")]) == #"upstream="a\"b\\c\n""#)
    }

    @Test func anEmptyStoreWritesNothing() {
        #expect(RequestMetricStore().exposition() == "")
    }
}
