import Foundation
import Testing
import TollgateCore
import TollgatePostgres
import TollgateTestSupport

/// Accounts through the admin API against the real application: keys issued into an account,
/// the account suspended (every key refused, others untouched), resumed, paged and deleted.
@Suite struct AccountAdminTests {
    typealias Admin = AdminAPITests.Admin
    static let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#

    static func object(_ response: TestResponse) throws -> [String: Any] {
        try #require(response.body.json as? [String: Any], "\(response.status) \(response.body)")
    }

    /// Creates an account and `count` keys in it; returns its id and the keys.
    static func account(_ admin: Admin, name: String, keys count: Int) async throws -> (Int64, [String]) {
        let created = try await admin.call("POST", "/v1/accounts", body: #"{"name":"\#(name)"}"#)
        #expect(created.status == 201)
        let id = try #require((try object(created)["id"] as? NSNumber)?.int64Value)
        var keys: [String] = []
        for _ in 0..<count {
            let issued = try await admin.call("POST", "/v1/keys", body: #"{"plan":"big","account_id":\#(id)}"#)
            #expect(issued.status == 201)
            keys.append(try #require(try object(issued)["key"] as? String))
        }
        return (id, keys)
    }

    @Test func suspendingAnAccountRefusesEveryKeyOfItUntilResumed() async throws {
        let (admin, node) = try await AdminAPITests.start()
        try await Self.suspendingAnAccountRefusesEveryKeyOfItUntilResumed(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func suspendingAnAccountRefusesEveryKeyOfItUntilResumed(_ admin: Admin, node: FakeNode) async throws {
        let (id, keys) = try await Self.account(admin, name: "Acme Rollups", keys: 2)
        let (_, others) = try await Self.account(admin, name: "Other", keys: 1)
        for key in keys + others { #expect(try await admin.harness.post(Self.call, key: key).status == 200) }

        // Bad names and unknown accounts are 400 with the reason; a read token may not suspend.
        let empty = try await admin.call("POST", "/v1/accounts", body: #"{"name":""}"#)
        #expect(empty.status == 400 && empty.body.contains("must not be empty"))
        let twoLines = try await admin.call("POST", "/v1/accounts", body: #"{"name":"a\nb"}"#)
        #expect(twoLines.status == 400 && twoLines.body.contains("one line"))
        let nowhere = try await admin.call("POST", "/v1/keys", body: #"{"plan":"big","account_id":987654}"#)
        #expect(nowhere.status == 400 && nowhere.body.contains("no such account"))
        #expect(try await admin.call("POST", "/v1/accounts/\(id)/suspend", token: AdminAPITests.reader).status == 403)

        // The account's keys, and only those, by filter.
        let listed = try Self.object(try await admin.call("GET", "/v1/keys?account=\(id)", token: AdminAPITests.reader))
        let prefixes = try #require(listed["items"] as? [[String: Any]]).compactMap { $0["prefix"] as? String }
        #expect(prefixes.count == 2 && keys.allSatisfy { key in prefixes.contains { key.hasPrefix($0) } })

        let suspended = try await admin.call("POST", "/v1/accounts/\(id)/suspend")
        #expect(suspended.status == 200)
        let change = try Self.object(suspended)
        #expect((change["account"] as? [String: Any])?["status"] as? String == "suspended")
        #expect(Set(change["keys"] as? [String] ?? []) == Set(prefixes))
        for key in keys {
            let refused = try await admin.harness.post(Self.call, key: key)
            #expect(refused.status == 403)
            #expect(refused.body.contains("account is suspended"))
        }
        #expect(try await admin.harness.post(Self.call, key: others[0]).status == 200)
        let shown = try Self.object(try await admin.call("GET", "/v1/keys/\(prefixes[0])", token: AdminAPITests.reader))
        #expect(shown["status"] as? String == "suspended" && (shown["account_id"] as? NSNumber)?.int64Value == id)
        // A key of a suspended account is not rotated into a working one.
        #expect(try await admin.call("POST", "/v1/keys/\(prefixes[0])/rotate").status == 400)

        #expect(try await admin.call("POST", "/v1/accounts/\(id)/resume").status == 200)
        for key in keys { #expect(try await admin.harness.post(Self.call, key: key).status == 200) }

        // Deleted: the keys are revoked for good; the account is gone.
        let deleted = try await admin.call("DELETE", "/v1/accounts/\(id)")
        #expect(deleted.status == 200)
        for key in keys {
            let refused = try await admin.harness.post(Self.call, key: key)
            #expect(refused.status == 403 && refused.body.contains("revoked"))
        }
        #expect(try await admin.call("GET", "/v1/accounts/\(id)", token: AdminAPITests.reader).status == 404)
        #expect(try await admin.call("DELETE", "/v1/accounts/\(id)").status == 404)
        #expect(try await admin.call("POST", "/v1/accounts/\(id)/suspend").status == 404)
    }

    /// PATCH changes a key's label, allowlists and account with the rules a new key passes,
    /// and the gateway applies the new allowlist to the next request.
    @Test func aKeysLabelAllowlistsAndAccountChangeInPlace() async throws {
        let (admin, node) = try await AdminAPITests.start()
        try await Self.aKeysLabelAllowlistsAndAccountChangeInPlace(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func aKeysLabelAllowlistsAndAccountChangeInPlace(_ admin: Admin, node: FakeNode) async throws {
        let (id, keys) = try await Self.account(admin, name: "Acme", keys: 1)
        let prefix = try #require(try Self.object(try await admin.call("GET", "/v1/keys?account=\(id)", token: AdminAPITests.reader))["items"]
            .flatMap { ($0 as? [[String: Any]])?.first?["prefix"] as? String })
        #expect(try await admin.harness.post(Self.call, key: keys[0]).status == 200)
        let changed = try await admin.call(
            "PATCH", "/v1/keys/\(prefix)", body: #"{"label":"indexer","allowed_methods":["eth_chainId"],"allowed_ips":["10.1.2.3"],"account_id":0}"#)
        #expect(changed.status == 200)
        let record = try Self.object(changed)
        #expect(record["label"] as? String == "indexer" && record["allowed_ips"] as? [String] == ["10.1.2.3/32"])
        #expect(record["account_id"] == nil)
        // This replica forgot its copy: the next request meets the new allowlists.
        #expect(try await admin.harness.post(Self.call, key: keys[0]).status == 403)
        let widened = try await admin.call("PATCH", "/v1/keys/\(prefix)", body: #"{"allowed_ips":[],"allowed_methods":[],"account_id":\#(id)}"#)
        let widenedRecord = try Self.object(widened)
        #expect(widened.status == 200 && (widenedRecord["account_id"] as? NSNumber)?.int64Value == id)
        #expect(try await admin.harness.post(Self.call, key: keys[0]).status == 200)
        // The rules of a new key, and their messages.
        let bad = try await admin.call("PATCH", "/v1/keys/\(prefix)", body: #"{"allowed_ips":["ten"],"allowed_networks":["mars"],"account_id":4242}"#)
        #expect(bad.status == 400 && bad.body.contains("not an address") && bad.body.contains("unknown network") && bad.body.contains("no such account"))
        #expect(try await admin.call("PATCH", "/v1/keys/\(prefix)", body: "{}").status == 400)
        #expect(try await admin.call("PATCH", "/v1/keys/tg_nosuchkey", body: #"{"label":"x"}"#).status == 404)
    }

    /// Every write through the API is in the store's audit log with the token's name and the
    /// object before and after; a key's hash never is.
    @Test func everyChangeIsInTheAuditLogWithWhoAndBeforeAndAfter() async throws {
        let (admin, node) = try await AdminAPITests.start()
        try await Self.everyChangeIsInTheAuditLogWithWhoAndBeforeAndAfter(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func everyChangeIsInTheAuditLogWithWhoAndBeforeAndAfter(_ admin: Admin, node: FakeNode) async throws {
        let (id, _) = try await Self.account(admin, name: "Acme", keys: 1)
        #expect(try await admin.call("POST", "/v1/accounts/\(id)/suspend").status == 200)
        let prefix = try #require(try Self.object(try await admin.call("GET", "/v1/keys?account=\(id)", token: AdminAPITests.reader))["items"]
            .flatMap { ($0 as? [[String: Any]])?.first?["prefix"] as? String })
        #expect(try await admin.call("PATCH", "/v1/keys/\(prefix)", body: #"{"plan":"free"}"#).status == 200)
        let name = "127.0.0.1:\(node.port)"
        #expect(try await admin.call("POST", "/v1/networks/ethereum/nodes/\(name)/cordon").status == 200)

        let page = try Self.object(try await admin.call("GET", "/v1/audit?limit=3", token: AdminAPITests.reader))
        let items = try #require(page["items"] as? [[String: Any]])
        #expect(items.map { $0["action"] as? String } == ["node.cordon", "key.update", "account.suspend"])
        #expect(items.allSatisfy { $0["actor"] as? String == "token:billing" })
        #expect(items[0]["target"] as? String == "ethereum/\(name)")
        let update = items[1]
        #expect(update["target"] as? String == prefix)
        #expect((update["before"] as? String)?.contains(#""plan":"big""#) == true && (update["after"] as? String)?.contains(#""plan":"free""#) == true)
        #expect((items[2]["after"] as? String)?.contains(#""status":"suspended""#) == true)
        let next = try #require(page["next_cursor"] as? String)
        let older = try #require(try Self.object(try await admin.call("GET", "/v1/audit?limit=2&cursor=\(next)", token: AdminAPITests.reader))["items"] as? [[String: Any]])
        #expect(older.map { $0["action"] as? String } == ["key.create", "account.create"])
        #expect(!(try await admin.call("GET", "/v1/audit", token: AdminAPITests.reader).body.contains("hash")))
    }

    @Test func accountsComeAPageAtATime() async throws {
        let (admin, node) = try await AdminAPITests.start()
        try await Self.accountsComeAPageAtATime(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }

    static func accountsComeAPageAtATime(_ admin: Admin, node: FakeNode) async throws {
        var made: [Int64] = []
        for index in 0..<5 { made.append(try await Self.account(admin, name: "customer \(index)", keys: 0).0) }
        var seen: [Int64] = []
        var path = "/v1/accounts?limit=2"
        while true {
            let page = try Self.object(try await admin.call("GET", path, token: AdminAPITests.reader))
            let items = try #require(page["items"] as? [[String: Any]])
            #expect(items.count <= 2)
            seen += items.compactMap { ($0["id"] as? NSNumber)?.int64Value }
            guard let next = page["next_cursor"] as? String else { break }
            path = "/v1/accounts?limit=2&cursor=\(next)"
        }
        #expect(seen == made)
        // A key listing's cursor is not an account listing's.
        let keyCursor = Data("k1".utf8).base64EncodedString()
        #expect(try await admin.call("GET", "/v1/accounts?cursor=\(keyCursor)", token: AdminAPITests.reader).status == 400)
    }
}

/// Every endpoint that reads or writes the key store, on PostgreSQL (the tests above run the
/// same flows on SQLite): keys paged, issued, changed, rotated, revoked, their usage; accounts
/// paged, suspended, resumed, deleted; the audit log. The same answers from the other store.
@Suite(.serialized) struct AdminOnPostgresTests {
    @Test func everyStoreBackedEndpointOnPostgreSQL() async throws {
        let pg = try await PostgresServers.migratedPrimary()
        defer { pg.destroy() }
        let base = GatewayHarness.defaultYAML + (try pg.storeYAML())
        let (admin, node) = try await AdminAPITests.start(base: base)
        // The two that count what they list first, on the empty store.
        try await AdminAPITests.pagesHoldWhileKeysAreAdded(admin, node: node)
        try await AccountAdminTests.accountsComeAPageAtATime(admin, node: node)
        try await AdminAPITests.signupFlow(admin)
        try await AdminAPITests.rotatingHandsOutANewKeyAndEndsTheOldOneAfterTheOverlap(admin, node: node)
        try await AdminAPITests.usageShowsTheMonthAgainstTheQuotaAtOnce(admin, node: node)
        try await AccountAdminTests.suspendingAnAccountRefusesEveryKeyOfItUntilResumed(admin, node: node)
        try await AccountAdminTests.aKeysLabelAllowlistsAndAccountChangeInPlace(admin, node: node)
        try await AccountAdminTests.everyChangeIsInTheAuditLogWithWhoAndBeforeAndAfter(admin, node: node)
        try await admin.harness.stop()
        await node.stop()
    }
}

extension AdminOnPostgresTests {
    /// Without Redis, cordons go through the PostgreSQL key store: a cordon on one replica
    /// reaches the other within a second (NOTIFY), one started later reads the table at start,
    /// and an uncordon anywhere ends it everywhere.
    @Test func aCordonReachesEveryReplicaThroughPostgreSQL() async throws {
        let pg = try await PostgresServers.migratedPrimary()
        defer { pg.destroy() }
        try await AdminAPITests.cordonReachesEveryReplica(base: GatewayHarness.defaultYAML + (try pg.storeYAML()))
    }
}

/// Two replicas on one PostgreSQL, each caching keys for a minute: an account suspended through
/// one replica's admin API is refused by the other within a second (NOTIFY for each of its
/// keys, in the suspension's transaction), and a resume comes back the same way.
@Suite(.serialized) struct AccountSuspensionTests {
    @Test func aSuspensionReachesEveryReplicaThroughPostgreSQL() async throws {
        let pg = try await PostgresServers.migratedPrimary()
        defer { pg.destroy() }
        let node = try await FakeNode.start()
        let base = GatewayHarness.oneNodeYAML + """
            server:
              auth_cache: {positive_ttl_ms: 60000, negative_ttl_ms: 60000}
            """ + (try pg.storeYAML())
        let (first, _) = try await AdminAPITests.start(base: base, node: node)
        let (second, _) = try await AdminAPITests.start(base: base, node: node)
        let (id, keys) = try await AccountAdminTests.account(first, name: "Acme", keys: 2)
        // Both replicas have the keys cached.
        for replica in [first, second] {
            for key in keys { #expect(try await replica.harness.post(AccountAdminTests.call, key: key).status == 200) }
        }
        #expect(try await first.call("POST", "/v1/accounts/\(id)/suspend").status == 200)
        #expect(await eventually(timeout: .seconds(1)) {
            var statuses: [Int] = []
            for key in keys { statuses.append(try await second.harness.post(AccountAdminTests.call, key: key).status) }
            return statuses == [403, 403]
        })
        #expect(try await first.call("POST", "/v1/accounts/\(id)/resume").status == 200)
        #expect(await eventually(timeout: .seconds(1)) {
            var statuses: [Int] = []
            for key in keys { statuses.append(try await second.harness.post(AccountAdminTests.call, key: key).status) }
            return statuses == [200, 200]
        })
        for replica in [first, second] { try await replica.harness.stop() }
        await node.stop()
    }
}
