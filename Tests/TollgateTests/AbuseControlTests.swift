import Foundation
import Testing
import TollgateApp
import TollgateCore
import TollgateTestSupport

@Suite struct IPBlocklistTests {
    @Test func parsesBlocksCommentsAndBothFamilies() throws {
        let list = try IPBlocklist(text: """
            # a feed
            203.0.113.0/24
            198.51.100.7        # one address
            2001:db8::/32

            10.0.0.0/8
            10.1.0.0/16         # inside the block above: merged
            """)
        #expect(list.entries == 5)
        for blocked in ["203.0.113.0", "203.0.113.255", "198.51.100.7", "2001:db8::1", "2001:db8:ffff::", "10.1.2.3", "::ffff:10.9.9.9"] {
            #expect(list.contains(IPAddress(blocked)!), "\(blocked)")
        }
        for allowed in ["203.0.114.0", "203.0.112.255", "198.51.100.8", "2001:db9::", "11.0.0.0", "127.0.0.1", "::1"] {
            #expect(!list.contains(IPAddress(allowed)!), "\(allowed)")
        }
        #expect(try IPBlocklist(text: "0.0.0.0/0").contains(IPAddress("8.8.8.8")!))
        #expect(try IPBlocklist(text: "::/0").contains(IPAddress("2001:db8::1")!))
        #expect(try IPBlocklist(text: "\n# nothing\n").isEmpty)
    }

    @Test func namesTheLineThatDoesNotParse() {
        #expect(throws: IPBlocklist.ParseError(line: 3, text: "10.0.0.0/33")) { try IPBlocklist(text: "1.2.3.4\n\n10.0.0.0/33\n") }
        #expect(throws: IPBlocklist.ParseError(line: 1, text: "example.com")) { try IPBlocklist(text: "example.com # a host name") }
    }

    @Test func agreesWithALinearScanOverRandomBlocks() throws {
        var random = SplitMix64(seed: 11)
        var blocks: [CIDR] = []
        var text = ""
        for _ in 0..<500 {
            let value = random.next()
            let address = "\(value & 0xFF).\(value >> 8 & 0xFF).\(value >> 16 & 0xFF).\(value >> 24 & 0xFF)"
            let line = "\(address)/\(8 + Int(value >> 32 % 25) % 25)"
            blocks.append(CIDR(line)!)
            text += line + "\n"
        }
        let list = try IPBlocklist(text: text)
        for _ in 0..<4_000 {
            let value = random.next()
            let address = IPAddress("\(value & 0xFF).\(value >> 8 & 0xFF).\(value >> 16 & 0xFF).\(value >> 24 & 0xFF)")!
            #expect(list.contains(address) == blocks.contains { $0.contains(address) })
        }
    }
}

@Suite struct FailedAuthLimiterTests {
    static let second: Int64 = 1_000_000_000
    let a = IPAddress("203.0.113.1")!
    let b = IPAddress("203.0.113.2")!

    @Test func blocksAfterTheLimitForTheBlockTimeThenForgets() {
        var limiter = FailedAuthLimiter(settings: .init(maxFailures: 3, windowNanos: 60 * Self.second, blockNanos: 300 * Self.second))
        #expect(limiter.failed(a, now: 0) == .counted(1))
        #expect(limiter.failed(a, now: 1) == .counted(2))
        #expect(limiter.blockedFor(a, now: 2) == nil)
        #expect(limiter.failed(a, now: 2) == .blocked(until: 2 + 300 * Self.second))
        #expect(limiter.blocked == 1)
        #expect(limiter.blockedFor(a, now: 3) == 300 * Self.second - 1)
        #expect(limiter.blockedFor(b, now: 3) == nil)
        #expect(limiter.failed(a, now: 4) == .alreadyBlocked)
        // The block ends; the address starts from zero and the blocked count falls.
        #expect(limiter.blockedFor(a, now: 2 + 300 * Self.second) == nil)
        #expect(limiter.blocked == 0)
        #expect(limiter.failed(a, now: 301 * Self.second) == .counted(1))
    }

    @Test func failuresOutsideTheWindowDoNotAddUp() {
        var limiter = FailedAuthLimiter(settings: .init(maxFailures: 3, windowNanos: 10 * Self.second, blockNanos: 60 * Self.second))
        #expect(limiter.failed(a, now: 0) == .counted(1))
        #expect(limiter.failed(a, now: 9 * Self.second) == .counted(2))
        #expect(limiter.failed(a, now: 10 * Self.second) == .counted(1))
        #expect(limiter.failed(a, now: 11 * Self.second) == .counted(2))
        #expect(limiter.failed(b, now: 11 * Self.second) == .counted(1))
    }

    @Test func aFullTableSweepsIdleEntriesAndNeverDropsABlock() {
        var limiter = FailedAuthLimiter(settings: .init(maxFailures: 2, windowNanos: 10 * Self.second, blockNanos: 100 * Self.second, capacity: 3))
        _ = limiter.failed(a, now: 0)
        _ = limiter.failed(a, now: 0)  // a is blocked
        _ = limiter.failed(b, now: 0)
        #expect(limiter.failed(IPAddress("203.0.113.3")!, now: 0) == .counted(1))
        #expect(limiter.failed(IPAddress("203.0.113.4")!, now: 1) == .untracked)
        // Once the windows have passed, idle entries make room; the block stays.
        #expect(limiter.failed(IPAddress("203.0.113.4")!, now: 20 * Self.second) == .counted(1))
        #expect(limiter.tracked == 2)
        #expect(limiter.blockedFor(a, now: 20 * Self.second) != nil)
    }
}

/// The failed-auth limiter and the blocklist on a running gateway.
@Suite struct AbuseControlTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    @Test func anAddressThatGuessesTooManyKeysWaitsWithoutReachingTheStore() async throws {
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.defaultYAML.replacingOccurrences(of: "  listen: 127.0.0.1:0", with: "  listen: 127.0.0.1:0\n  trusted_proxies: [\"127.0.0.1/32\"]")
            + "\nauth:\n  failed_auth: {max_failures: 5, window_ms: 60000, block_ms: 60000}\n"
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key()
        func post(_ key: String, from client: String) async throws -> TestResponse {
            try await harness.post(Self.body, key: key, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", client)])
        }
        let guesser = "198.51.100.9"
        for index in 0..<5 {
            let guess = index % 2 == 0 ? "tg_" + String(repeating: "x", count: 43) : "not-a-key"
            #expect(try await post(guess, from: guesser).status == 401)
        }
        let misses = try await harness.metric(#"tollgate_keycache_requests_total{result="miss"}"#)
        // Blocked now, even with a good key, and told when to come back.
        let blocked = try await post(key, from: guesser)
        #expect(blocked.status == 429)
        #expect(blocked.body.jsonObject?.errorCode == -32005)
        let retryAfter = try #require(blocked.header("Retry-After").flatMap(Int.init))
        #expect(retryAfter > 50 && retryAfter <= 60)
        for _ in 0..<20 { #expect(try await post("tg_" + String(repeating: "y", count: 43), from: guesser).status == 429) }
        #expect(try await harness.metric(#"tollgate_keycache_requests_total{result="miss"}"#) == misses)
        #expect(try await harness.metric(#"tollgate_auth_failures_total{reason="too_many_failures"}"#) == 21)
        // Another address is not affected, nor is a client with a good key and no failures.
        #expect(try await post(key, from: "198.51.100.10").status == 200)
        #expect(try await post("tg_" + String(repeating: "z", count: 43), from: "198.51.100.10").status == 401)
        try await harness.stop()
        await node.stop()
    }

    /// Replicas sharing a Redis share the budget: guesses spread over two replicas, each under
    /// its own budget, block the address on both once their sum reaches it.
    @Test func replicasSharingARedisShareTheFailedAuthBudget() async throws {
        let redis = try await RedisServers.make(ports: 1)
        try await redis.start()
        defer { redis.destroy() }
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.defaultYAML.replacingOccurrences(of: "  listen: 127.0.0.1:0", with: "  listen: 127.0.0.1:0\n  trusted_proxies: [\"127.0.0.1/32\"]")
            + """

            auth:
              failed_auth: {max_failures: 10, window_ms: 60000, block_ms: 30000}
            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(redis.base)"]
            """
        let replicas = [try await GatewayHarness.start(nodes: [node], yaml: yaml), try await GatewayHarness.start(nodes: [node], yaml: yaml)]
        var keys: [String] = []
        for replica in replicas { keys.append(try await replica.key()) }
        func post(_ replica: Int, _ key: String, from client: String) async throws -> Int {
            try await replicas[replica].post(Self.body, key: key, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", client)]).status
        }
        let guesser = "198.51.100.77", guess = "tg_" + String(repeating: "x", count: 43)
        // Six at one replica, four at the other: each under its own budget of ten, the budget in all.
        for _ in 0..<6 { #expect(try await post(0, guess, from: guesser) == 401) }
        for _ in 0..<4 { #expect(try await post(1, guess, from: guesser) == 401) }
        // Both replicas refuse the address, good keys included (polled with good keys, which
        // count no failure of their own).
        #expect(await eventually(timeout: .seconds(3)) {
            let first = try await post(0, keys[0], from: guesser), second = try await post(1, keys[1], from: guesser)
            return first == 429 && second == 429
        })
        #expect(try await post(0, keys[0], from: "198.51.100.78") == 200)
        for replica in replicas { try await replica.stop() }
        await node.stop()
    }

    @Test func theBlocklistRefusesAddressesAndFollowsItsFile() async throws {
        let node = try await FakeNode.start()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-block-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/blocklist.txt"
        try "# feed\n203.0.113.0/24\n".write(toFile: file, atomically: true, encoding: .utf8)
        let yaml = GatewayHarness.defaultYAML.replacingOccurrences(of: "  listen: 127.0.0.1:0", with: """
              listen: 127.0.0.1:0
              trusted_proxies: ["127.0.0.1/32"]
              blocklist_file: \(file)
              blocklist_reload_ms: 100
            """)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key()
        func post(from client: String) async throws -> TestResponse {
            try await harness.post(Self.body, key: key, headers: [("Content-Type", "application/json"), ("X-Forwarded-For", client)])
        }
        let refused = try await post(from: "203.0.113.77")
        #expect(refused.status == 403)
        #expect(refused.body.jsonObject?.errorMessage == "client address blocked")
        #expect(try await post(from: "198.51.100.1").status == 200)
        #expect(try await harness.metric(#"tollgate_blocklist_entries"#) == 1)

        // A file that does not parse is refused; the list in force stays.
        try "203.0.113.0/24\nnot an address\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await eventually { (try? await harness.metric(#"tollgate_blocklist_reloads_total{result="refused"}"#)) == 1 })
        #expect(try await post(from: "203.0.113.77").status == 403)

        // The loopback peer itself is listed: new connections are closed at accept.
        try "203.0.113.0/24\n127.0.0.0/8\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(await eventually { (try? await harness.metric(#"tollgate_blocklist_reloads_total{result="loaded"}"#)) == 1 })
        let client = try await TestHTTPClient.connect(port: harness.port)
        try? await client.send(raw: "POST /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(Self.body.utf8.count)\r\n\r\n\(Self.body)")
        #expect(try await client.next() == nil)
        await client.close()
        #expect(try await harness.metric(#"tollgate_connections_refused_total{reason="blocklist"}"#) >= 1)
        try await harness.stop()
        await node.stop()
    }

    @Test func aBlocklistThatDoesNotLoadIsAConfigError() throws {
        let dir = FileManager.default.temporaryDirectory.path
        let bad = dir + "/tg-bad-blocklist-\(UUID().uuidString).txt"
        try "10.0.0.0/8\n10.0.0.0/99\n".write(toFile: bad, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let base = GatewayHarness.defaultYAML.replacingOccurrences(of: "{NODE0}", with: "http://127.0.0.1:1")
        for (path, message) in [(bad, "line 2: '10.0.0.0/99'"), (dir + "/nope-\(UUID().uuidString)", "cannot read")] {
            let yaml = base.replacingOccurrences(of: "  listen: 127.0.0.1:0", with: "  listen: 127.0.0.1:0\n  blocklist_file: \(path)")
            #expect {
                _ = try ConfigReader.parse(yaml: yaml)
            } throws: { error in
                (error as? ConfigErrors)?.issues.contains { $0.path == "server.blocklist_file" && $0.message.contains(message) } == true
            }
        }
        #expect(throws: ConfigErrors.self) { _ = try ConfigReader.parse(yaml: base + "\nauth:\n  failed_auth: {max_failures: 0}\n") }
        #expect(try ConfigReader.parse(yaml: base + "\nauth:\n  failed_auth: off\n").auth.failedAuth == nil)
        #expect(try ConfigReader.parse(yaml: base).auth.failedAuth == FailedAuthLimiter.Settings())
    }
}

/// `plans.NAME.max_connections`: open connections per key.
@Suite struct KeyConnectionCapTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    @Test func aKeyHoldsAtMostItsPlansConnections() async throws {
        let node = try await FakeNode.start()
        let yaml = GatewayHarness.defaultYAML + "\n  capped: {cu_per_second: 100000, requests_per_second: 100000, max_connections: 2}\n"
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key(plan: "capped")
        let other = try await harness.key(plan: "capped")
        let path = "/v1/ethereum/\(key)"
        let headers = [("Content-Type", "application/json")]
        let first = try await TestHTTPClient.connect(port: harness.port)
        let second = try await TestHTTPClient.connect(port: harness.port)
        for _ in 0..<3 {
            #expect(try await first.request(path: path, headers: headers, body: Self.body).status == 200)
            #expect(try await second.request(path: path, headers: headers, body: Self.body).status == 200)
        }
        // A third connection on the key: 429, and the connection closes.
        let third = try await TestHTTPClient.connect(port: harness.port)
        let refused = try await third.request(path: path, headers: headers, body: Self.body)
        #expect(refused.status == 429)
        #expect(refused.body.jsonObject?.errorCode == -32005)
        #expect(refused.header("Connection")?.lowercased() == "close")
        #expect(try await third.next() == nil)
        // Another key is counted apart.
        #expect(try await harness.post(Self.body, key: other).status == 200)
        // A closed connection gives its slot back.
        await first.close()
        #expect(await eventually { (try? await harness.post(Self.body, key: key).status) == 200 })
        await second.close()
        await third.close()
        try await harness.stop()
        await node.stop()
    }
}
