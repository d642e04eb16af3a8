import Crypto
import Foundation
import NIOSSL
import Testing
import TollgateCore
import TollgateTestSupport

/// The admin API (generated from Sources/TollgateAdmin/openapi.yaml) against the real
/// application: tokens and roles, keys issued, listed a page at a time, moved to another plan
/// and revoked, each change taking effect on the gateway.
@Suite struct AdminAPITests {
    static let writer = "tg-admin-write-0123456789abcdef"
    static let reader = "tg-admin-read-0123456789abcdef"

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    struct Admin {
        let harness: GatewayHarness
        let port: Int

        func call(_ method: String, _ path: String, token: String? = AdminAPITests.writer, body: String = "") async throws -> TestResponse {
            var headers = [("Content-Type", "application/json")]
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            return try await TestHTTPClient.connect(port: port).request(method: method, path: path, headers: headers, body: body)
        }
    }

    /// - Parameter base: the config before its `admin:` section (`{DIR}` is the run's folder).
    /// - Parameter node: the node behind it (a new one when nil), so replicas can share one.
    /// - Parameter admin: more lines of the `admin:` section.
    /// - Parameter configPath: where the server reloads its config from (the test writes it).
    static func start(
        base: String = GatewayHarness.defaultYAML, node: FakeNode? = nil, admin extra: String = "", directory: String? = nil, configPath: String? = nil
    ) async throws -> (Admin, FakeNode) {
        let node = if let node { node } else { try await FakeNode.start() }
        let directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try """
            # name role sha256
            billing write \(sha256(writer))
            dashboard read \(sha256(reader))
            """.write(toFile: directory + "/tokens", atomically: true, encoding: .utf8)
        let yaml = base + """

            admin:
              listen: 127.0.0.1:0
              tokens_file: {DIR}/tokens
            """ + extra
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml, directory: directory, configPath: configPath)
        let port = try #require(await harness.app.admin?.localPort)
        return (Admin(harness: harness, port: port), node)
    }

    @Test func signupIssuesAKeyTheGatewayTakesAndRevokingStopsIt() async throws {
        let (admin, node) = try await Self.start()
        try await Self.signupFlow(admin)
        try await admin.harness.stop()
        await node.stop()
    }

    static func signupFlow(_ admin: Admin) async throws {
        let created = try await admin.call("POST", "/v1/keys", body: #"{"plan":"big","label":"signup 42","allowed_origins":["https://app.example"]}"#)
        #expect(created.status == 201)
        let object = try #require(created.body.json as? [String: Any])
        let key = try #require(object["key"] as? String)
        let record = try #require(object["record"] as? [String: Any])
        let prefix = try #require(record["prefix"] as? String)
        #expect(record["label"] as? String == "signup 42")
        #expect(record["status"] as? String == "active")
        #expect(!created.body.contains("hash"))

        let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#
        #expect(try await admin.harness.post(call, key: key).status == 200)

        // The record, without the key; billing moves it to another plan.
        let shown = try await admin.call("GET", "/v1/keys/\(prefix)", token: Self.reader)
        #expect(shown.status == 200)
        #expect(!shown.body.contains(key))
        let moved = try await admin.call("PATCH", "/v1/keys/\(prefix)", body: #"{"plan":"free"}"#)
        #expect(moved.status == 200)
        #expect((moved.body.json as? [String: Any])?["plan"] as? String == "free")
        let unknownPlan = try await admin.call("PATCH", "/v1/keys/\(prefix)", body: #"{"plan":"gold"}"#)
        #expect(unknownPlan.status == 400)
        #expect(unknownPlan.header("Content-Type")?.hasPrefix("application/problem+json") == true)
        #expect(unknownPlan.body.contains("unknown plan 'gold'"))

        // A keep-alive connection that already used the key (its memo of the last key
        // answers its second request).
        let open = try await TestHTTPClient.connect(port: admin.harness.port)
        for _ in 0..<2 { #expect(try await open.request(path: "/v1/ethereum/\(key)", body: call).status == 200) }

        // Revoked: the gateway refuses the key at once (this replica forgot its copy), on a
        // new connection and on the one that used it before.
        let revoked = try await admin.call("POST", "/v1/keys/\(prefix)/revoke")
        #expect(revoked.status == 200)
        #expect((revoked.body.json as? [String: Any])?["status"] as? String == "revoked")
        let refused = try await admin.harness.post(call, key: key)
        #expect(refused.status == 403)
        #expect(try await open.request(path: "/v1/ethereum/\(key)", body: call).status == 403)
        await open.close()
        // Revoking twice is harmless; a key that never was is 404; DELETE is not a method here.
        #expect(try await admin.call("POST", "/v1/keys/\(prefix)/revoke").status == 200)
        #expect(try await admin.call("POST", "/v1/keys/nosuchkey/revoke").status == 404)
        let delete = try await admin.call("DELETE", "/v1/keys/\(prefix)")
        #expect(delete.status == 405)
        #expect(delete.header("Allow") == "GET, PATCH")
        #expect(try await admin.call("GET", "/v1/keys/nosuchkey", token: Self.reader).status == 404)
    }

    @Test func plansAndNetworksAreShownAndACordonedNodeLeavesRotation() async throws {
        let nodes = [try await FakeNode.start(), try await FakeNode.start()]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "billing write \(Self.sha256(Self.writer))\ndashboard read \(Self.sha256(Self.reader))\n"
            .write(toFile: directory + "/tokens", atomically: true, encoding: .utf8)
        let harness = try await GatewayHarness.start(nodes: nodes, yaml: """
            networks:
              ethereum:
                chain_id: 1
                health_check: {interval_ms: 100}
                upstreams:
                  - url: {NODE0}
                  - url: {NODE1}
                    role: fallback
            plans:
              big: {cu_per_second: 1000000, requests_per_second: 100000, monthly_cu: 5000000}
            admin:
              listen: 127.0.0.1:0
              tokens_file: {DIR}/tokens
            """, directory: directory)
        let admin = Admin(harness: harness, port: try #require(await harness.app.admin?.localPort))
        let key = try await harness.key()
        let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#

        let plans = try await admin.call("GET", "/v1/plans", token: Self.reader)
        #expect(plans.status == 200)
        let plan = try #require(((plans.body.json as? [String: Any])?["items"] as? [[String: Any]])?.first)
        #expect(plan["name"] as? String == "big" && plan["monthly_cu"] as? Int == 5_000_000 && plan["cache"] as? Bool == true)

        let names = nodes.map { "127.0.0.1:\($0.port)" }
        let board = try #require(harness.app.healthBoards["ethereum"])
        #expect(await eventually { board.cells.allSatisfy { $0.head != nil } })
        let networks = try await admin.call("GET", "/v1/networks", token: Self.reader)
        #expect(networks.status == 200)
        let network = try #require(((networks.body.json as? [String: Any])?["items"] as? [[String: Any]])?.first)
        #expect(network["name"] as? String == "ethereum" && network["chain_id"] as? Int == 1 && network["head"] as? Int == 0x1234)
        let shown = try #require(network["nodes"] as? [[String: Any]])
        #expect(shown.map { $0["name"] as? String } == names)
        #expect(shown.map { $0["role"] as? String } == ["primary", "fallback"])
        #expect(shown.allSatisfy { $0["healthy"] as? Bool == true && $0["cordoned"] as? Bool == false && $0["circuit"] as? String == "closed" })

        // The primary cordoned: traffic goes to the fallback; a read token may not cordon.
        #expect(try await admin.call("POST", "/v1/networks/ethereum/nodes/\(names[0])/cordon", token: Self.reader).status == 403)
        let cordoned = try await admin.call("POST", "/v1/networks/ethereum/nodes/\(names[0])/cordon")
        #expect(cordoned.status == 200)
        #expect((cordoned.body.json as? [String: Any])?["cordoned"] as? Bool == true)
        nodes.forEach { $0.resetReceived() }
        for _ in 0..<10 { #expect(try await harness.post(call, key: key).status == 200) }
        #expect(nodes[0].requestCount == 0 && nodes[1].requestCount == 10)
        // Both cordoned: nothing in rotation, 503; uncordoned: the primary takes traffic again.
        #expect(try await admin.call("POST", "/v1/networks/ethereum/nodes/\(names[1])/cordon").status == 200)
        #expect(try await harness.post(call, key: key).status == 503)
        #expect(try await admin.call("POST", "/v1/networks/ethereum/nodes/\(names[0])/uncordon").status == 200)
        nodes.forEach { $0.resetReceived() }
        #expect(try await harness.post(call, key: key).status == 200)
        #expect(nodes[0].requestCount == 1)
        // Unknown names are 404; GET is not the method.
        #expect(try await admin.call("POST", "/v1/networks/ethereum/nodes/10.9.9.9:1/cordon").status == 404)
        #expect(try await admin.call("POST", "/v1/networks/mars/nodes/\(names[0])/cordon").status == 404)
        #expect(try await admin.call("GET", "/v1/networks/ethereum/nodes/\(names[0])/cordon", token: Self.reader).status == 405)
        try await harness.stop()
        for node in nodes { await node.stop() }
    }

    @Test func withMutualTLSOnlyClientsHoldingACertificateReachTheAPI() async throws {
        let certs = try await TLSListenerTests.certificates()
        let (admin, node) = try await Self.start(
            admin: "\n  tls: {cert_file: \(certs)/server.crt, key_file: \(certs)/server.key, client_ca_file: \(certs)/ca.crt, require_client_cert: true}")
        let harness = admin.harness, port = admin.port
        func get(certificate: Bool, token: String? = Self.reader) async -> Int? {
            guard let tls = try? TLSListenerTests.client(certs, certificate: certificate),
                let client = try? await TestHTTPClient.connect(port: port, tls: tls)
            else { return nil }
            defer { Task { await client.close() } }
            let headers = token.map { [("Authorization", "Bearer \($0)")] } ?? []
            return try? await client.request(method: "GET", path: "/v1/networks", headers: headers, body: "").status
        }
        #expect(await get(certificate: true) == 200)
        // The certificate opens the door; the token still decides who may do what.
        #expect(await get(certificate: true, token: nil) == 401)
        #expect(await get(certificate: false) == nil)
        // Plain HTTP gets no answer from a TLS listener.
        let plain = try await TestHTTPClient.connect(port: port)
        try? await plain.send(raw: "GET /v1/networks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(Self.reader)\r\n\r\n")
        #expect(try await plain.next() == nil)
        await plain.close()
        try await harness.stop()
        await node.stop()
    }

    /// The admin listener's certificate is reloaded as the gateway's is: new handshakes get the
    /// new pair, an open connection keeps its own, and a pair that does not load is refused.
    @Test func theAdminCertificateIsReloadedWithoutARestart() async throws {
        let certs = try await TLSListenerTests.certificates()
        try await ClickHouseServer.script([TLSListenerTests.script, certs, "issue", "second"])
        let (admin, node) = try await Self.start(
            admin: "\n  tls: {cert_file: \(certs)/server.crt, key_file: \(certs)/server.key, reload_interval_ms: 100}")
        let harness = admin.harness, port = admin.port
        let tls = try TLSListenerTests.client(certs)
        let first = try NIOSSLCertificate.fromPEMFile(certs + "/server.crt")[0]
        let second = try NIOSSLCertificate.fromPEMFile(certs + "/second.crt")[0]
        /// A new connection's answer to a read and the certificate it was shown.
        func get() async -> (Int?, NIOSSLCertificate?) {
            guard let client = try? await TestHTTPClient.connect(port: port, tls: tls) else { return (nil, nil) }
            defer { Task { await client.close() } }
            let status = try? await client.request(method: "GET", path: "/v1/plans", headers: [("Authorization", "Bearer \(Self.reader)")], body: "").status
            return (status, try? await client.peerCertificate())
        }
        let open = try await TestHTTPClient.connect(port: port, tls: tls)
        #expect(try await open.request(method: "GET", path: "/v1/plans", headers: [("Authorization", "Bearer \(Self.reader)")], body: "").status == 200)
        #expect(try await open.peerCertificate() == first)

        for name in ["key", "crt"] {
            try FileManager.default.removeItem(atPath: certs + "/server.\(name)")
            try FileManager.default.copyItem(atPath: certs + "/second.\(name)", toPath: certs + "/server.\(name)")
        }
        #expect(await eventually { let (status, shown) = await get(); return status == 200 && shown == second })
        #expect(try await harness.metric(#"tollgate_tls_reloads_total{listener="admin.tls",result="loaded"}"#) >= 1)
        // The connection made before keeps its certificate and keeps working.
        #expect(try await open.request(method: "GET", path: "/v1/plans", headers: [("Authorization", "Bearer \(Self.reader)")], body: "").status == 200)
        #expect(try await open.peerCertificate() == first)
        await open.close()

        // The key of another certificate: refused, the second pair stays.
        try FileManager.default.removeItem(atPath: certs + "/server.crt")
        try FileManager.default.copyItem(atPath: certs + "/client.crt", toPath: certs + "/server.crt")
        #expect(await eventually { try await harness.metric(#"tollgate_tls_reloads_total{listener="admin.tls",result="refused"}"#) >= 1 })
        let (status, shown) = await get()
        #expect(status == 200 && shown == second)
        try await harness.stop()
        await node.stop()
    }

    @Test func rotatingHandsOutANewKeyAndEndsTheOldOneAfterTheOverlap() async throws {
        let (admin, node) = try await Self.start()
        try await Self.rotatingHandsOutANewKeyAndEndsTheOldOneAfterTheOverlap(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func rotatingHandsOutANewKeyAndEndsTheOldOneAfterTheOverlap(_ admin: Admin, node: FakeNode) async throws {
        let created = try #require(try await admin.call("POST", "/v1/keys", body: #"{"plan":"big","label":"deploy","allowed_methods":["eth_*"]}"#).body.json as? [String: Any])
        let oldKey = try #require(created["key"] as? String)
        let prefix = try #require((created["record"] as? [String: Any])?["prefix"] as? String)
        let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#
        #expect(try await admin.harness.post(call, key: oldKey).status == 200)

        // A day's overlap: both keys work; the new one carries the old one's label and allowlist.
        let rotated = try await admin.call("POST", "/v1/keys/\(prefix)/rotate", body: #"{"overlap":"24h"}"#)
        #expect(rotated.status == 201)
        let body = try #require(rotated.body.json as? [String: Any])
        let newKey = try #require(body["key"] as? String)
        let record = try #require(body["record"] as? [String: Any])
        let old = try #require(body["old"] as? [String: Any])
        #expect(record["label"] as? String == "deploy" && record["allowed_methods"] as? [String] == ["eth_*"])
        #expect(record["prefix"] as? String != prefix && old["prefix"] as? String == prefix)
        let overlapEnds = try #require(old["expires_at"] as? Int)
        #expect(abs(overlapEnds - Int(Date().timeIntervalSince1970) - 86_400) < 60)
        #expect(try await admin.harness.post(call, key: oldKey).status == 200)
        #expect(try await admin.harness.post(call, key: newKey).status == 200)

        // Rotated again with no overlap: the key before ends at once, on this replica too.
        let newPrefix = try #require(record["prefix"] as? String)
        let ended = try await admin.call("POST", "/v1/keys/\(newPrefix)/rotate", body: #"{"overlap":"0s"}"#)
        #expect(ended.status == 201)
        let refused = try await admin.harness.post(call, key: newKey)
        #expect(refused.status == 403 && refused.body.contains("expired"))

        // The CLI's rules and messages; a reader may not rotate; a key that never was is 404.
        let forever = try await admin.call("POST", "/v1/keys/\(prefix)/rotate", body: #"{"overlap":"forever"}"#)
        #expect(forever.status == 400 && forever.body.contains("--overlap forever"))
        #expect(try await admin.call("POST", "/v1/keys/\(prefix)/rotate", token: Self.reader).status == 403)
        #expect(try await admin.call("POST", "/v1/keys/nosuchkey/rotate").status == 404)
        _ = try await admin.call("POST", "/v1/keys/\(prefix)/revoke")
        let revoked = try await admin.call("POST", "/v1/keys/\(prefix)/rotate")
        #expect(revoked.status == 400 && revoked.body.contains("revoked"))
    }

    @Test func usageShowsTheMonthAgainstTheQuotaAtOnce() async throws {
        let (admin, node) = try await Self.start()
        try await Self.usageShowsTheMonthAgainstTheQuotaAtOnce(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func usageShowsTheMonthAgainstTheQuotaAtOnce(_ admin: Admin, node: FakeNode) async throws {
        let created = try #require(try await admin.call("POST", "/v1/keys", body: #"{"plan":"free"}"#).body.json as? [String: Any])
        let key = try #require(created["key"] as? String)
        let prefix = try #require((created["record"] as? [String: Any])?["prefix"] as? String)
        let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#
        for _ in 0..<3 { #expect(try await admin.harness.post(call, key: key).status == 200) }
        // This replica's count, before any flush reached the store: 3 × 10 CU.
        let usage = try await admin.call("GET", "/v1/keys/\(prefix)/usage", token: Self.reader)
        #expect(usage.status == 200)
        let body = try #require(usage.body.json as? [String: Any])
        #expect(body["compute_units"] as? Int == 30)
        #expect(body["quota"] as? Int == 100_000_000 && body["remaining"] as? Int == 99_999_970)
        #expect(body["period"] as? String == BillingPeriod.current())
        #expect(body["days"] == nil, "no telemetry configured: no days")
        #expect(try await admin.call("GET", "/v1/keys/\(prefix)/usage?from=2026-13-01", token: Self.reader).status == 400)
        #expect(try await admin.call("GET", "/v1/keys/nosuchkey/usage", token: Self.reader).status == 404)
    }

    /// With Redis, a cordon made on one replica reaches the others within a second, a replica
    /// started later takes it from the shared set, and an uncordon anywhere ends it everywhere.
    @Test func aCordonReachesEveryReplicaSharingARedis() async throws {
        let redis = try await RedisServers.make(ports: 1)
        try await redis.start()
        defer { redis.destroy() }
        try await Self.cordonReachesEveryReplica(base: GatewayHarness.defaultYAML + """

            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(redis.base)"]
            """)
    }

    /// Replicas sharing `base`'s backend (Redis, or PostgreSQL without it): a cordon on one
    /// reaches another within a second, one started later has it at once, and an uncordon on
    /// any ends it on all.
    static func cordonReachesEveryReplica(base: String) async throws {
        let node = try await FakeNode.start()
        let (first, _) = try await Self.start(base: base, node: node)
        let (second, _) = try await Self.start(base: base, node: node)
        let name = "127.0.0.1:\(node.port)"
        func cordoned(_ admin: Admin) async throws -> Bool? {
            let body = try await admin.call("GET", "/v1/networks", token: Self.reader).body.json as? [String: Any]
            let network = (body?["items"] as? [[String: Any]])?.first { $0["name"] as? String == "ethereum" }
            return (network?["nodes"] as? [[String: Any]])?.first { $0["name"] as? String == name }?["cordoned"] as? Bool
        }
        #expect(try await cordoned(second) == false)
        #expect(try await first.call("POST", "/v1/networks/ethereum/nodes/\(name)/cordon").status == 200)
        #expect(await eventually(timeout: .seconds(1)) { try await cordoned(second) == true })
        // Started after the cordon: it reads the shared set at start.
        let (third, _) = try await Self.start(base: base, node: node)
        #expect(await eventually(timeout: .seconds(2)) { try await cordoned(third) == true })
        #expect(try await third.call("POST", "/v1/networks/ethereum/nodes/\(name)/uncordon").status == 200)
        #expect(await eventually(timeout: .seconds(1)) {
            let one = try await cordoned(first), two = try await cordoned(second)
            return one == false && two == false
        })
        for admin in [first, second, third] { try await admin.harness.stop() }
        await node.stop()
    }

    @Test func tokensAndRoles() async throws {
        let (admin, node) = try await Self.start()
        let none = try await admin.call("GET", "/v1/keys", token: nil)
        #expect(none.status == 401)
        #expect(none.header("WWW-Authenticate") == "Bearer")
        #expect((none.body.json as? [String: Any])?["status"] as? Int == 401)
        #expect(try await admin.call("GET", "/v1/keys", token: "tg-admin-guess").status == 401)
        // A read token reads and may not write.
        #expect(try await admin.call("GET", "/v1/keys", token: Self.reader).status == 200)
        let write = try await admin.call("POST", "/v1/keys", token: Self.reader, body: #"{"plan":"big"}"#)
        #expect(write.status == 403)
        #expect(write.body.contains("may only read"))
        // Bad input: the service's own message, as problem+json.
        let badPlan = try await admin.call("POST", "/v1/keys", body: #"{"plan":"gold"}"#)
        #expect(badPlan.status == 400)
        #expect(badPlan.body.contains("unknown plan"))
        #expect(try await admin.call("POST", "/v1/keys", body: #"{"label":"no plan"}"#).status == 400)
        try await admin.harness.stop()
        await node.stop()
    }

    @Test func pagesHoldWhileKeysAreAdded() async throws {
        let (admin, node) = try await Self.start()
        try await Self.pagesHoldWhileKeysAreAdded(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func pagesHoldWhileKeysAreAdded(_ admin: Admin, node: FakeNode) async throws {
        var prefixes: [String] = []
        for index in 0..<5 {
            let created = try await admin.call("POST", "/v1/keys", body: #"{"plan":"big","label":"k\#(index)"}"#)
            prefixes.append(try #require(((created.body.json as? [String: Any])?["record"] as? [String: Any])?["prefix"] as? String))
        }
        let first = try #require(try await admin.call("GET", "/v1/keys?limit=2", token: Self.reader).body.json as? [String: Any])
        let cursor = try #require(first["next_cursor"] as? String)
        // A key created between two pages comes last; no page repeats or skips one.
        _ = try await admin.call("POST", "/v1/keys", body: #"{"plan":"free","label":"late"}"#)
        var seen = (first["items"] as? [[String: Any]] ?? []).compactMap { $0["prefix"] as? String }
        var next: String? = cursor
        while let page = next {
            let body = try #require(try await admin.call("GET", "/v1/keys?limit=2&cursor=\(page)", token: Self.reader).body.json as? [String: Any])
            seen += (body["items"] as? [[String: Any]] ?? []).compactMap { $0["prefix"] as? String }
            next = body["next_cursor"] as? String
        }
        #expect(seen.count == 6)
        #expect(Array(seen.prefix(5)) == prefixes)
        let free = try #require(try await admin.call("GET", "/v1/keys?plan=free", token: Self.reader).body.json as? [String: Any])
        #expect((free["items"] as? [Any])?.count == 1)
        let labelled = try #require(try await admin.call("GET", "/v1/keys?label=k3", token: Self.reader).body.json as? [String: Any])
        #expect((labelled["items"] as? [[String: Any]])?.compactMap { $0["prefix"] as? String } == [prefixes[3]])
        #expect(try await admin.call("GET", "/v1/keys?cursor=bogus", token: Self.reader).status == 400)
    }

    /// schemathesis (PyPI) against the live API, from the same document the server is generated
    /// from: every check but `positive_data_acceptance`, which would have every schema-valid body
    /// accepted, and a plan name is valid only if the config declares it (plans are YAML, not
    /// part of the document), nor a cursor unless this server gave it.
    @Test func schemathesisFindsNothing() async throws {
        let (admin, node) = try await Self.start()
        let output = admin.harness.directory + "/schemathesis.out"
        let document = TollgateProcess.root + "/Sources/TollgateAdmin/openapi.yaml"
        let code = #"import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; sys.exit(schemathesis())"#
        let child = try Web3SubscriptionTests.spawn([
            Web3SubscriptionTests.python, "-c", code, "run", document, "--url", "http://127.0.0.1:\(admin.port)",
            "-H", "Authorization: Bearer \(Self.writer)", "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "25", "--seed", "1", "--no-color",
        ], output: output)
        var status: Int32 = 0
        let exited = await eventually(timeout: .seconds(240)) { waitpid(child, &status, WNOHANG) == child }
        if !exited { kill(child, SIGKILL) }
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(exited && (status >> 8) & 0xff == 0 && status & 0x7f == 0, "schemathesis: \(printed.suffix(3000))")
        #expect(printed.contains("Tested: 19"))
        try await admin.harness.stop()
        await node.stop()
    }
}
