import Foundation
import Synchronization
import Testing
import TollgateApp
import TollgateTestSupport

/// Networks and nodes change under a running gateway (SIGHUP, `POST /reload`): traffic moves
/// to the new nodes with no failed request, networks come and go, a node that stays keeps its
/// health and cordon, and a file whose node TLS does not load changes nothing.
@Suite struct NetworkReloadTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    /// `networks` as YAML lines under `networks:`, each `(name, chain id, node lines)`.
    static func yaml(_ networks: [(String, Int, [String])], timeout: Int = 30_000) -> String {
        var text = "server:\n  listen: 127.0.0.1:0\nnetworks:\n"
        for (name, chainID, nodes) in networks {
            text += "  \(name):\n    chain_id: \(chainID)\n    timeout_ms: \(timeout)\n    upstreams:\n"
            for node in nodes { text += "      - \(node)\n" }
        }
        return text + "plans:\n  big: {cu_per_second: 1000000, requests_per_second: 100000}\n"
    }

    static func start(_ yaml: String, nodes: [FakeNode]) async throws -> (GatewayHarness, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-netreload-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/tollgate.yaml"
        try yaml.write(toFile: file, atomically: true, encoding: .utf8)
        return (try await GatewayHarness.start(nodes: nodes, yaml: yaml, configPath: file), file)
    }

    /// Counts what a few clients, each on its own kept-alive connection, got back while they ran.
    final class Load: Sendable {
        let stopped = Atomic<Bool>(false)
        let ok = Atomic<Int>(0)
        let failed = Mutex<[String]>([])
        private let tasks: Mutex<[Task<Void, Never>]> = Mutex([])

        init(port: Int, path: String, clients: Int) {
            for _ in 0..<clients {
                let task = Task {
                    guard let client = try? await TestHTTPClient.connect(port: port) else {
                        self.failed.withLock { $0.append("connect") }
                        return
                    }
                    while !self.stopped.load(ordering: .relaxed) {
                        do {
                            let response = try await client.request(path: path, headers: [("Content-Type", "application/json")], body: NetworkReloadTests.body)
                            if response.status == 200 { self.ok.add(1, ordering: .relaxed) } else { self.failed.withLock { $0.append("\(response.status) \(response.body)") } }
                        } catch {
                            self.failed.withLock { $0.append("\(error)") }
                            break
                        }
                    }
                    await client.close()
                }
                tasks.withLock { $0.append(task) }
            }
        }

        /// Waits until `count` more answers have come back (bounded: a stuck gateway fails the test).
        func waitFor(_ count: Int) async throws {
            let target = ok.load(ordering: .relaxed) + count
            let deadline = ContinuousClock.now + .seconds(30)
            while ok.load(ordering: .relaxed) < target {
                if ContinuousClock.now > deadline || !failed.withLock({ $0.isEmpty }) { break }
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(ok.load(ordering: .relaxed) >= target)
        }

        func stop() async {
            stopped.store(true, ordering: .relaxed)
            for task in tasks.withLock({ $0 }) { await task.value }
        }
    }

    @Test func nodesMoveUnderLoadAndNetworksComeAndGoWithNoFailedRequest() async throws {
        let a = try await FakeNode.start(), b = try await FakeNode.start(), polygon = try await FakeNode.start()
        polygon.setChainID("0x89")
        let (harness, file) = try await Self.start(Self.yaml([("ethereum", 1, ["url: \(a.url)"])]), nodes: [a])
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        let reload = try #require(harness.app.configReload)
        let key = try await harness.key()
        let load = Load(port: harness.port, path: "/v1/ethereum/\(key)", clients: 4)
        try await load.waitFor(200)
        #expect(a.requestCount > 0 && b.requestCount == 0)

        // Every node replaced, a setting changed: the next requests go to b, on the same connections.
        try Self.yaml([("ethereum", 1, ["url: \(b.url)"])], timeout: 20_000).write(toFile: file, atomically: true, encoding: .utf8)
        let moved = await reload.reload()
        #expect(moved.applied == ["networks"] && moved.needRestart.isEmpty && moved.errors.isEmpty)
        let aAfter = a.requestCount
        try await load.waitFor(200)
        // Only requests already sent when the pools were swapped (one per client at most) may
        // have reached a, or been answered by it since; every later one went to b.
        let late = a.requestCount - aAfter
        #expect(late <= 4 && b.requestCount >= 196)
        let status = try await harness.status()
        let nodes = ((status["networks"] as? [[String: Any]])?.first?["nodes"] as? [[String: Any]])?.compactMap { $0["upstream"] as? String }
        #expect(nodes == ["127.0.0.1:\(b.port)"])

        // A network added is served; removed, it is unknown again. Ethereum's traffic goes on.
        #expect(try await harness.post(Self.body, key: key, network: "polygon").status == 404)
        try Self.yaml([("ethereum", 1, ["url: \(b.url)"]), ("polygon", 137, ["url: \(polygon.url)"])], timeout: 20_000)
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await reload.reload().applied == ["networks"])
        let served = try await harness.post(Self.body, key: key, network: "polygon")
        #expect(served.status == 200 && served.body.contains("0x89"))
        #expect(polygon.requestCount == 1)
        try Self.yaml([("ethereum", 1, ["url: \(b.url)"])], timeout: 20_000).write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await reload.reload().applied == ["networks"])
        #expect(try await harness.post(Self.body, key: key, network: "polygon").status == 404)
        try await load.waitFor(50)

        await load.stop()
        #expect(load.failed.withLock { $0 } == [])
        try await harness.stop()
        for node in [a, b, polygon] { await node.stop() }
    }

    @Test func aNodeThatStaysKeepsItsHealthCellAndCordon() async throws {
        let a = try await FakeNode.start(), b = try await FakeNode.start(), c = try await FakeNode.start()
        let (harness, file) = try await Self.start(Self.yaml([("ethereum", 1, ["url: \(a.url)", "url: \(b.url)"])]), nodes: [a, b])
        defer { try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: file).deletingLastPathComponent().path) }
        let reload = try #require(harness.app.configReload)
        let key = try await harness.key()
        let cellA = try #require(harness.app.healthBoards["ethereum"]?.cells.first)
        cellA.cordon(true)

        // Reordered, with a third node: a's cell is the same one, still cordoned. Two reloads
        // at once (a SIGHUP and a POST) run one after the other: the second finds nothing new.
        try Self.yaml([("ethereum", 1, ["url: \(c.url)", "url: \(b.url)", "url: \(a.url)"])]).write(toFile: file, atomically: true, encoding: .utf8)
        async let first = reload.reload()
        async let second = reload.reload()
        let outcomes = await [first, second]
        #expect(outcomes.map(\.applied).sorted { $0.count > $1.count } == [["networks"], []])
        let cells = try #require(harness.app.healthBoards["ethereum"]?.cells)
        #expect(cells.count == 3 && cells[2] === cellA && cells[2].isCordoned && !cells[0].isCordoned)
        let before = a.requestCount
        for _ in 0..<30 { #expect(try await harness.post(Self.body, key: key).status == 200) }
        #expect(a.requestCount == before)
        #expect(b.requestCount + c.requestCount >= 30 && c.requestCount > 0)
        // The new node was checked before it took traffic.
        #expect(c.healthCheckCount > 0)
        try await harness.stop()
        for node in [a, b, c] { await node.stop() }
    }

    @Test func aNodeTLSFileThatDoesNotLoadChangesNothingAndWebSocketUpstreamsWaitForARestart() async throws {
        let a = try await FakeNode.start(), b = try await FakeNode.start()
        let (harness, file) = try await Self.start(Self.yaml([("ethereum", 1, ["url: \(a.url)"])]), nodes: [a])
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent().path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reload = try #require(harness.app.configReload)
        let key = try await harness.key()
        try "not a certificate\n".write(toFile: dir + "/ca.pem", atomically: true, encoding: .utf8)

        try Self.yaml([("ethereum", 1, ["{url: \"https://127.0.0.1:\(b.port)\", tls_ca_file: \(dir)/ca.pem}"])]).write(toFile: file, atomically: true, encoding: .utf8)
        let refused = await reload.reload()
        #expect(refused.applied.isEmpty && refused.errors.map(\.path) == ["networks"])
        #expect(refused.errors.first?.message.contains("TLS files of upstream 127.0.0.1:\(b.port)") == true)
        #expect(try await harness.post(Self.body, key: key).status == 200)
        #expect(a.requestCount == 1 && b.requestCount == 0)

        // The same file fixed applies; a WebSocket upstream added is named as needing a restart.
        try Self.yaml([("ethereum", 1, ["{url: \(b.url), ws_url: \"ws://127.0.0.1:\(b.port)/\"}"])]).write(toFile: file, atomically: true, encoding: .utf8)
        let applied = await reload.reload()
        #expect(applied.applied == ["networks"] && applied.needRestart == ["networks.ethereum (WebSocket upstreams)"])
        #expect(try await harness.post(Self.body, key: key).status == 200)
        #expect(b.requestCount == 1)
        try await harness.stop()
        for node in [a, b] { await node.stop() }
    }
}

extension NetworkReloadTests {
    @Test func theAdminAPIFollowsAReloadsPlansAndNetworks() async throws {
        let node = try await FakeNode.start()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-netreload-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/tollgate.yaml"
        let admin = "\nadmin:\n  listen: 127.0.0.1:0\n  tokens_file: \(dir)/tokens\n"
        try (Self.yaml([("ethereum", 1, ["url: \(node.url)"])]) + admin).write(toFile: file, atomically: true, encoding: .utf8)
        let (api, _) = try await AdminAPITests.start(base: Self.yaml([("ethereum", 1, ["url: \(node.url)"])]), node: node, directory: dir, configPath: file)
        let reload = try #require(api.harness.app.configReload)
        #expect(try await api.call("POST", "/v1/keys", body: #"{"plan":"pro"}"#).status == 400)

        try (Self.yaml([("ethereum", 1, ["url: \(node.url)"]), ("polygon", 137, ["url: \(node.url)"])])
            .replacingOccurrences(of: "plans:\n", with: "plans:\n  pro: {cu_per_second: 1000, requests_per_second: 100}\n") + admin)
            .write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await reload.reload().applied == ["networks", "plans"])
        let plans = try await api.call("GET", "/v1/plans", token: AdminAPITests.reader)
        #expect(plans.status == 200 && plans.body.contains(#""pro""#))
        #expect(try await api.call("POST", "/v1/keys", body: #"{"plan":"pro"}"#).status == 201)
        let networks = try await api.call("GET", "/v1/networks", token: AdminAPITests.reader)
        #expect(networks.status == 200 && networks.body.contains(#""polygon""#))
        try await api.harness.stop()
        await node.stop()
    }
}
