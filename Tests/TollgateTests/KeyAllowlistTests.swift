import Foundation
import Testing
import TollgateApp
import TollgateCore
@testable import TollgateDataPlane
import TollgateTestSupport

/// Contract and user-agent allowlists and key rotation, end to end: keys in the server's SQLite
/// store, requests over a socket, the fake node behind.
@Suite struct KeyAllowlistTests {
    static let a = "0x" + String(repeating: "a", count: 40)
    static let b = "0x" + String(repeating: "b", count: 40)

    @Test func contractAllowlistChecksEveryAddressACallNames() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key { $0.allowedContracts = [Self.a.uppercased().replacingOccurrences(of: "0X", with: "0x"), SignedTransactionTests.contract] }
        let allowed = try await harness.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["\#(Self.a)","latest"]}"#, key: key)
        #expect(allowed.status == 200)
        let refused = try await harness.post(#"{"jsonrpc":"2.0","id":2,"method":"eth_call","params":[{"to":"\#(Self.b)"},"latest"]}"#, key: key)
        #expect(refused.status == 403)
        #expect(refused.body.jsonObject?.errorCode == -32002)
        #expect(refused.body.jsonObject?.errorMessage == "address \(Self.b) not allowed for this key")
        #expect(refused.body.jsonObject?["id"] as? Int == 2)
        // Logs need an address on the list; a filter without one could read any contract.
        let anyLogs = try await harness.post(#"{"jsonrpc":"2.0","id":3,"method":"eth_getLogs","params":[{"fromBlock":"0x1"}]}"#, key: key)
        #expect(anyLogs.status == 403)
        #expect(anyLogs.body.jsonObject?.errorMessage?.contains("must name its 'address'") == true)
        // Raw transactions are decoded: to a listed contract goes through, a creation does not.
        let sent = try await harness.post(#"{"jsonrpc":"2.0","id":4,"method":"eth_sendRawTransaction","params":["\#(SignedTransactionTests.dynamicFee)"]}"#, key: key)
        #expect(sent.status == 200)
        let created = try await harness.post(#"{"jsonrpc":"2.0","id":5,"method":"eth_sendRawTransaction","params":["\#(SignedTransactionTests.creation)"]}"#, key: key)
        #expect(created.status == 403)
        #expect(created.body.jsonObject?.errorMessage?.contains("contract creation") == true)
        // In a batch, only the refused call gets an error; the others reach the node.
        node.resetReceived()
        let batch = try await harness.post(#"[{"jsonrpc":"2.0","id":6,"method":"eth_getCode","params":["\#(Self.a)","latest"]},{"jsonrpc":"2.0","id":7,"method":"eth_getCode","params":["\#(Self.b)","latest"]},{"jsonrpc":"2.0","id":8,"method":"eth_chainId"}]"#, key: key)
        #expect(batch.status == 200)
        let items = try #require(batch.body.json as? [[String: Any]])
        #expect(items.count == 3)
        #expect(items.first { $0["id"] as? Int == 7 }?.errorCode == -32002)
        #expect(items.first { $0["id"] as? Int == 6 }?["result"] != nil)
        #expect(node.received.count == 1 && !node.received[0].body.contains(Self.b))
        // Methods that name no contract are not affected; a key without a list is not either.
        #expect(try await harness.post(#"{"jsonrpc":"2.0","id":9,"method":"eth_blockNumber"}"#, key: key).status == 200)
        let open = try await harness.key()
        #expect(try await harness.post(#"{"jsonrpc":"2.0","id":10,"method":"eth_call","params":[{"to":"\#(Self.b)"},"latest"]}"#, key: open).status == 200)
        // A bad address is refused at creation.
        await #expect(throws: KeyIssueError.self) { _ = try await harness.key { $0.allowedContracts = ["0x1234"] } }
        try await harness.stop()
        await node.stop()
    }

    @Test func userAgentAllowlistMatchesSubstringsIgnoringCase() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key { $0.allowedUserAgents = ["MyWallet/", "indexer"] }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        func post(_ agent: String?) async throws -> TestResponse {
            var headers = [("Content-Type", "application/json")]
            if let agent { headers.append(("User-Agent", agent)) }
            return try await harness.post(body, key: key, headers: headers)
        }
        #expect(try await post("mywallet/2.1 (iOS)").status == 200)
        #expect(try await post("acme-Indexer-7").status == 200)
        let other = try await post("curl/8.5")
        #expect(other.status == 403)
        #expect(other.body.jsonObject?.errorMessage == "user agent not allowed for this key")
        #expect(try await post(nil).status == 403)
        try await harness.stop()
        await node.stop()
    }

    @Test func rotationIssuesATwinAndEndsTheOldKeyAfterTheOverlap() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        let store = harness.app.keyStore
        // Rotated with an hour's overlap: both keys work, the twin has the old one's lists.
        let old = try await KeyIssuer.issue({
            var request = KeyIssuer.Request(plan: "big")
            request.label = "app"
            request.allowedUserAgents = ["ok"]
            request.allowedContracts = [Self.a]
            return request
        }(), config: harness.config, store: store)
        let started = WallClock.nowMillis() / 1000
        let rotated = try await KeyIssuer.rotate(prefix: old.record.prefix, overlap: "1h", config: harness.config, store: store)
        #expect(abs(rotated.oldExpiresAt - (started + 3_600)) < 60)
        #expect(rotated.issued.record.label == "app" && rotated.issued.record.plan == "big")
        #expect(rotated.issued.record.allowedContracts == [Self.a] && rotated.issued.record.allowedUserAgents == ["ok"])
        let headers = [("Content-Type", "application/json"), ("User-Agent", "ok")]
        #expect(try await harness.post(body, key: old.key, headers: headers).status == 200)
        #expect(try await harness.post(body, key: rotated.issued.key, headers: headers).status == 200)
        #expect(try await store.record(prefix: old.record.prefix)?.expiresAt == rotated.oldExpiresAt)
        // With no overlap the old key ends at once (it was never cached: the store answers).
        let second = try await harness.key()
        let secondPrefix = APIKeyToken.prefix(of: second)
        let replaced = try await KeyIssuer.rotate(prefix: secondPrefix, overlap: "0s", config: harness.config, store: store)
        let ended = try await harness.post(body, key: second)
        #expect(ended.status == 403)
        #expect(ended.body.jsonObject?.errorMessage == "API key expired")
        #expect(try await harness.post(body, key: replaced.issued.key).status == 200)
        // An overlap never lengthens a key's life, and revoked or unknown keys are not rotated.
        let third = try await harness.key { $0.expiresIn = "10m" }
        let thirdRecord = try #require(try await store.record(prefix: APIKeyToken.prefix(of: third)))
        let capped = try await KeyIssuer.rotate(prefix: thirdRecord.prefix, overlap: "7d", config: harness.config, store: store)
        #expect(capped.oldExpiresAt == thirdRecord.expiresAt)
        _ = try await store.revoke(prefix: thirdRecord.prefix)
        await #expect(throws: KeyIssueError.self) { _ = try await KeyIssuer.rotate(prefix: thirdRecord.prefix, overlap: "1h", config: harness.config, store: store) }
        await #expect(throws: KeyIssueError.self) { _ = try await KeyIssuer.rotate(prefix: "tg_nope", overlap: "1h", config: harness.config, store: store) }
        await #expect(throws: KeyIssueError.self) { _ = try await KeyIssuer.rotate(prefix: secondPrefix, overlap: "soon", config: harness.config, store: store) }
        try await harness.stop()
        await node.stop()
    }
}

/// Key secrets (Infura-style): the secret as the HTTP Basic password, stored hashed.
@Suite struct KeySecretTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    @Test func aKeyWithASecretNeedsItAsTheBasicPassword() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node])
        var request = KeyIssuer.Request(plan: "big")
        request.withSecret = true
        let issued = try await KeyIssuer.issue(request, config: harness.config, store: harness.app.keyStore)
        let secret = try #require(issued.secret)
        #expect(secret.hasPrefix("tgs_") && secret.count == 47)
        let stored = try #require(try await harness.app.keyStore.record(prefix: issued.record.prefix))
        #expect(stored.secretHash == KeyHash(key: secret))
        func post(_ authorization: String?) async throws -> TestResponse {
            var headers = [("Content-Type", "application/json")]
            if let authorization { headers.append(("Authorization", authorization)) }
            return try await harness.post(Self.body, key: issued.key, headers: headers)
        }
        func basic(_ credentials: String) -> String { "Basic " + Data(credentials.utf8).base64EncodedString() }
        let missing = try await post(nil)
        #expect(missing.status == 401 && missing.body.jsonObject?.errorCode == -32001)
        #expect(missing.body.jsonObject?.errorMessage?.contains("requires its secret") == true)
        #expect(try await post(basic(":tgs_wrong")).status == 401)
        #expect(try await post(basic(secret)).status == 401)  // no colon: no password
        #expect(try await post("Basic !!not-base64!!").status == 401)
        #expect(try await post(basic(":" + secret)).status == 200)
        #expect(try await post(basic("my-app:" + secret)).status == 200)
        #expect(try await harness.metric(#"tollgate_auth_failures_total{reason="secret"}"#) == 4)
        // A key without a secret needs none; rotation gives the twin a new secret.
        #expect(try await harness.post(Self.body, key: try await harness.key()).status == 200)
        let rotated = try await KeyIssuer.rotate(prefix: issued.record.prefix, overlap: "1h", config: harness.config, store: harness.app.keyStore)
        let newSecret = try #require(rotated.issued.secret)
        #expect(newSecret != secret)
        // The database holds neither the key nor the secret.
        let db = try Data(contentsOf: URL(fileURLWithPath: harness.directory + "/tollgate.db"))
        #expect(db.range(of: Data(secret.utf8)) == nil && db.range(of: Data(newSecret.utf8)) == nil)
        // A key that requires JWTs on a server without auth.jwt fails closed.
        let needsToken = try await harness.key { $0.requireJWT = true }
        let refused = try await harness.post(Self.body, key: needsToken)
        #expect(refused.status == 401 && refused.body.jsonObject?.errorMessage?.contains("auth.jwt is not configured") == true)
        try await harness.stop()
        await node.stop()
    }

    @Test func base64DecodesRFC4648VectorsAndRefusesTheRest() {
        func decode(_ text: String) -> String? {
            Array(text.utf8).withUnsafeBytes { Base64.decode($0) }.map { String(decoding: $0, as: UTF8.self) }
        }
        for (encoded, plain) in [("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg==", "foob"), ("Zm9vYmE=", "fooba"), ("Zm9vYmFy", "foobar")] {
            #expect(decode(encoded) == plain)
        }
        for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm=v"] { #expect(decode(bad) == nil, "\(bad)") }
    }
}
