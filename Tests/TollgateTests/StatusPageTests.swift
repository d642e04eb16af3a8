import Foundation
import Testing
import Yams
@testable import TollgateAdmin
@testable import TollgateApp

/// The admin listener's status page: the totals it reads from the metrics, the rates it shows,
/// the HTML it renders, and the page as a browser sees it.
@Suite struct StatusPageTests {
    @Test func totalsSumTheFamiliesThePageShows() {
        let text = """
            # TYPE tollgate_requests_total counter
            tollgate_requests_total{network="ethereum",method="eth_call",status="200",plan="free"} 40
            tollgate_requests_total{network="ethereum",method="eth_call",status="502",plan="free"} 3
            tollgate_requests_total{network="base",method="other",status="503",plan="pro"} 2
            tollgate_requests_total{network="base",method="other",status="429",plan="pro"} 5
            tollgate_ratelimit_rejections_total{plan="pro",kind="cu"} 5
            tollgate_cache_requests_total{network="ethereum",method="eth_chainId",result="hit"} 9
            tollgate_cache_requests_total{network="ethereum",method="eth_call",result="miss"} 3
            tollgate_cache_requests_total{network="ethereum",method="eth_call",result="uncacheable"} 30
            tollgate_requests_totally_other 100
            garbage line
            """
        let totals = MetricTotals(exposition: text)
        #expect(totals.requests == 50)
        #expect(totals.errors == 5)
        #expect(totals.rateLimited == 5)
        #expect(totals.cacheHits == 9 && totals.cacheLookups == 12)
        #expect(totals.telemetryQueueRows == nil)
        let shipping = MetricTotals(exposition: "tollgate_telemetry_queue_depth 7\ntollgate_telemetry_spool_bytes 2048\n")
        #expect(shipping.telemetryQueueRows == 7 && shipping.telemetrySpoolBytes == 2048)
    }

    @Test func historyGivesRatesPerIntervalAndStartsOverWhenCountersFall() {
        func totals(_ requests: Double, errors: Double = 0, hits: Double = 0, lookups: Double = 0) -> MetricTotals {
            var totals = MetricTotals()
            totals.requests = requests
            totals.errors = errors
            totals.cacheHits = hits
            totals.cacheLookups = lookups
            return totals
        }
        var history = TrafficHistory(capacity: 3)
        #expect(history.rates(now: 0).isEmpty)
        history.record(seconds: 0, totals(0))
        history.record(seconds: 10, totals(100, errors: 10, hits: 5, lookups: 10))
        history.record(seconds: 20, totals(300, errors: 10))
        let rates = history.rates(now: 25)
        #expect(rates.map(\.requestsPerSecond) == [10, 20])
        #expect(rates.map(\.errorsPerSecond) == [1, 0])
        #expect(rates.map(\.cacheHitRatio) == [0.5, nil])
        #expect(rates.map(\.secondsAgo) == [15, 5])
        // Capacity: the oldest sample goes.
        history.record(seconds: 30, totals(330))
        #expect(history.rates(now: 30).map(\.requestsPerSecond) == [20, 3])
        // A restart (counters lower than before) starts a new series, never a negative rate.
        history.record(seconds: 40, totals(4))
        #expect(history.rates(now: 40).isEmpty)
    }

    static func snapshot(nodes: [StatusSnapshot.Node]) -> StatusSnapshot {
        StatusSnapshot(
            version: "1.2.3", networks: [.init(name: "eth<main>", head: 100, nodes: nodes)],
            traffic: [
                .init(secondsAgo: 20, requestsPerSecond: 12.34, errorsPerSecond: 0, rateLimitedPerSecond: 1, cacheHitRatio: 0.5),
                .init(secondsAgo: 10, requestsPerSecond: 20, errorsPerSecond: 2, rateLimitedPerSecond: 0, cacheHitRatio: 0.25),
            ],
            backends: [.init(name: "keystore", up: true), .init(name: "redis", up: false), .init(name: "clickhouse", up: nil)],
            telemetryQueueRows: 12, telemetrySpoolBytes: 4096, degraded: ["redis unreachable: limits local"])
    }

    @Test func pageEscapesWhatNodesSayAndCountsNodesInRotation() {
        let html = StatusPageHTML.render(Self.snapshot(nodes: [
            .init(name: "a", healthy: true, cordoned: false, head: 100, lag: 0, circuit: "closed", latencyMillis: 1.25, lastError: nil),
            .init(name: "b", healthy: true, cordoned: true, head: 99, lag: 1, circuit: "closed", latencyMillis: 2, lastError: nil),
            .init(name: "c", healthy: false, cordoned: false, head: nil, lag: nil, circuit: "open", latencyMillis: 0,
                lastError: #"<script>alert("x")</script>"#),
        ]))
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.contains("1/3 in rotation"))
        #expect(html.contains("eth&lt;main&gt;") && !html.contains("eth<main>"))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") && !html.contains("<script>"))
        #expect(html.contains(">cordoned<") && html.contains(">unhealthy<"))
        #expect(html.contains("degraded: redis unreachable: limits local"))
        // Last interval's figures, a chart of each series, the backends, the spool.
        #expect(html.contains("<b>20</b>") && html.contains("<b>25 %</b>") && html.contains("<polyline"))
        #expect(html.contains(#"<b class="ok">up</b>"#) && html.contains(#"<b class="bad">down</b>"#) && html.contains("not probed yet"))
        #expect(html.contains("12 rows · 4 KiB"))
        #expect(html.contains(#"http-equiv="refresh""#) && html.contains(#"name="viewport""#))
        // Nothing fetched from elsewhere.
        #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<link"))
    }

    @Test func basicAuthCarriesTheTokenAsItsPassword() {
        let basic = "Basic " + Data("anyone:tg-secret:with-colon".utf8).base64EncodedString()
        #expect(AdminTokens.token(fromAuthorization: basic) == "tg-secret:with-colon")
        #expect(AdminTokens.token(fromAuthorization: "Bearer abc") == "abc")
        #expect(AdminTokens.token(fromAuthorization: "Basic !!!") == nil)
        #expect(AdminTokens.token(fromAuthorization: "Basic " + Data("nocolon".utf8).base64EncodedString()) == nil)
        #expect(AdminTokens.token(fromAuthorization: "Digest x") == nil)
    }

    /// The document compiled into the binary is the YAML in the repository, the generator's input.
    @Test func servedDocumentIsTheOneTheServerIsGeneratedFrom() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/TollgateAdmin/openapi.yaml")
        let yaml = try #require(try Yams.load(yaml: String(contentsOf: source, encoding: .utf8)) as? NSDictionary)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? NSDictionary)
        #expect(json == yaml, "run scripts/openapi-embed after editing openapi.yaml")
    }
}


extension StatusPageTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `admin.public_status: true`: the page answers without a token, with nodes by position and
    /// no errors (no address of a node leaks); a token still gets the full page, and the API
    /// still wants one.
    @Test func aPublicStatusPageHidesTheNodes() async throws {
        let (admin, node) = try await AdminAPITests.start(admin: "\n  public_status: true")
        let address = "127.0.0.1:\(node.port)"
        let client = { try await TestHTTPClient.connect(port: admin.port) }
        let board = try #require(admin.harness.app.healthBoards["ethereum"])
        #expect(await eventually { board.cells.allSatisfy { $0.head != nil } })
        for path in ["/", "/status"] {
            let page = try await client().request(method: "GET", path: path, headers: [], body: "")
            #expect(page.status == 200)
            #expect(page.body.contains(#"data-node="node 1""#) && page.body.contains("ethereum"))
            #expect(!page.body.contains(address) && !page.body.contains("127.0.0.1"))
        }
        let full = try await client().request(method: "GET", path: "/status", headers: [("Authorization", "Bearer \(AdminAPITests.reader)")], body: "")
        #expect(full.status == 200 && full.body.contains(address))
        #expect(try await client().request(method: "GET", path: "/v1/networks", headers: [], body: "").status == 401)
        #expect(try await client().request(method: "GET", path: "/openapi.json", headers: [], body: "").status == 401)
        try await admin.harness.stop()
        await node.stop()
    }

    @Test func aBrowserSeesTheFleetTheTrafficAndTheBackends() async throws {
        let (admin, node) = try await AdminAPITests.start()
        let harness = admin.harness
        let client = { try await TestHTTPClient.connect(port: admin.port) }

        // No credentials: a Basic challenge, so that a browser asks for them.
        let bare = try await client().request(method: "GET", path: "/status", headers: [], body: "")
        #expect(bare.status == 401)
        #expect(bare.header("WWW-Authenticate")?.hasPrefix("Basic realm=") == true)
        let wrong = "Basic " + Data("ops:not-a-token".utf8).base64EncodedString()
        #expect(try await client().request(method: "GET", path: "/", headers: [("Authorization", wrong)], body: "").status == 401)

        // Traffic between two samples, so the page has a rate to show.
        let sampler = try #require(harness.app.statusSampler)
        let board = try #require(harness.app.healthBoards["ethereum"])
        #expect(await eventually { board.cells.allSatisfy { $0.head != nil } })
        let key = try await harness.key()
        let basic = "Basic " + Data("ops:\(AdminAPITests.reader)".utf8).base64EncodedString()
        // The page's rate is between the last two samples; the sampler also takes one every 10 s
        // by itself, and one of those between ours and the page (a slow machine) shows the quiet
        // after the traffic. Then the traffic is sent again, up to three times.
        var page = TestResponse(status: 0, headers: [], body: "")
        var rate = 0.0
        for _ in 0..<3 where rate == 0 {
            sampler.sample()
            let before = MetricTotals(exposition: harness.app.metricsExposition()).requests
            for id in 0..<20 {
                #expect(try await harness.post(#"{"jsonrpc":"2.0","id":\#(id),"method":"eth_blockNumber","params":[]}"#, key: key).status == 200)
            }
            // A request is recorded just after its answer is written: the client can read the last
            // answer before its loop has counted it.
            #expect(await eventually { MetricTotals(exposition: harness.app.metricsExposition()).requests >= before + 20 })
            sampler.sample()
            page = try await client().request(method: "GET", path: "/status", headers: [("Authorization", basic)], body: "")
            // A rate: at least the 20 requests, over the time between the last two samples.
            let shown = page.body.firstMatch(of: #/id="requests"><span class="muted">Requests/s</span><b>([0-9.]+)</b>/#)
            #expect(shown != nil)
            rate = shown.flatMap { Double($0.1) } ?? 0
        }
        #expect(rate > 0)
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        let name = "127.0.0.1:\(node.port)"
        #expect(page.body.contains(#"data-node="\#(name)""#))
        #expect(page.body.contains("1/1 in rotation"))
        #expect(page.body.contains("head 4660"))  // the fake node's 0x1234
        #expect(page.body.contains(#"<span class="muted">keystore</span><b class="ok">up</b>"#) || page.body.contains("not probed yet"))
        // Same page at the root (its figures may have moved on by a sample); the API document beside it.
        let root = try await client().request(method: "GET", path: "/", headers: [("Authorization", basic)], body: "")
        #expect(root.status == 200 && root.header("Content-Type") == "text/html; charset=utf-8")
        #expect(root.body.contains(#"data-node="\#(name)""#) && root.body.contains("1/1 in rotation") && root.body.contains(#"id="requests""#))
        let document = try await client().request(method: "GET", path: "/openapi.json", headers: [("Authorization", basic)], body: "")
        #expect(document.status == 200)
        #expect((document.body.json as? [String: Any])?["openapi"] as? String == "3.1.0")
        #expect(try await client().request(method: "POST", path: "/status", headers: [("Authorization", basic)], body: "").status == 405)

        // A real browser, credentials in the URL as a person would type them once.
        let browser = try #require(Self.chromium, "chromium is needed (apt-get install chromium; scripts/test installs it)")
        let profile = harness.directory + "/chromium"
        let url = "http://ops:\(AdminAPITests.reader)@127.0.0.1:\(admin.port)/status"
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile)", "--window-size=390,844"]
        let dom = try await ChildProcess.run(browser, flags + ["--dump-dom", url])
        #expect(dom.status == 0)
        #expect(dom.output.contains(#"data-node="\#(name)""#))
        #expect(dom.output.contains("Requests/s"))
        let shot = harness.directory + "/status.png"
        _ = try await ChildProcess.run(browser, flags + ["--screenshot=\(shot)", url], directory: harness.directory)
        let png = try #require(FileManager.default.contents(atPath: shot))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        if let keep = ProcessInfo.processInfo.environment["TOLLGATE_KEEP_SCREENSHOT"] { try? png.write(to: URL(fileURLWithPath: keep)) }
        try await harness.stop()
        await node.stop()
    }
}
