import Foundation
import JWTKit
import Testing
import TollgateApp
@testable import TollgateDataPlane
import TollgateTestSupport

/// `auth.jwt`: tokens beside keys, verified with jwt-kit against a JWKS file that rotates.
@Suite struct JWTTests {
    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    static func jwk(_ key: ES256PrivateKey, kid: String) -> String {
        let (x, y) = key.publicKey.parameters!
        return #"{"kty":"EC","crv":"P-256","x":"\#(x)","y":"\#(y)","kid":"\#(kid)","alg":"ES256","use":"sig"}"#
    }

    static func claims(
        expiresIn: TimeInterval = 300, issuer: String = "https://auth.test", audience: String = "tollgate", methods: [String]? = nil,
        addresses: [String]? = nil, origins: [String]? = nil, notBefore: TimeInterval? = nil
    ) -> TollgateClaims {
        TollgateClaims(
            exp: ExpirationClaim(value: Date().addingTimeInterval(expiresIn)), nbf: notBefore.map { NotBeforeClaim(value: Date().addingTimeInterval($0)) },
            iss: IssuerClaim(value: issuer), aud: AudienceClaim(value: [audience]), methods: methods, addresses: addresses, origins: origins)
    }

    @Test func tokensAreVerifiedNarrowTheKeyAndFollowTheKeysFile() async throws {
        let node = try await FakeNode.start()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-jwt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = ES256PrivateKey()
        let second = ES256PrivateKey()
        let jwks = dir + "/jwks.json"
        try #"{"keys":[\#(Self.jwk(first, kid: "k1"))]}"#.write(toFile: jwks, atomically: true, encoding: .utf8)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: first, kid: "k1")
        await signer.add(ecdsa: second, kid: "k2")
        await signer.add(hmac: HMACKey(from: "a shared secret of at least thirty-two bytes"), digestAlgorithm: .sha256, kid: "h1")
        func token(_ claims: TollgateClaims, kid: String = "k1") async throws -> String {
            try await signer.sign(claims, kid: JWKIdentifier(string: kid))
        }

        let yaml = GatewayHarness.defaultYAML + """

              locked: {cu_per_second: 100000, requests_per_second: 100000, require_jwt: true}
            auth:
              jwt: {keys_file: \(jwks), algorithms: [ES256], issuer: "https://auth.test", audience: tollgate, reload_interval_ms: 100}
            """
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let open = try await harness.key()
        let locked = try await harness.key(plan: "locked")
        func post(_ key: String, _ token: String?, body: String = Self.body, origin: String? = nil) async throws -> TestResponse {
            var headers = [("Content-Type", "application/json")]
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            if let origin { headers.append(("Origin", origin)) }
            return try await harness.post(body, key: key, headers: headers)
        }

        // A plan that requires a token refuses requests without one; others do not need one.
        #expect(try await post(open, nil).status == 200)
        let missing = try await post(locked, nil)
        #expect(missing.status == 401 && missing.body.jsonObject?.errorCode == -32001)
        #expect(missing.body.jsonObject?.errorMessage?.contains("requires a JWT") == true)
        let good = try await token(Self.claims())
        #expect(try await post(locked, good).status == 200)
        #expect(try await post(locked, good).status == 200)  // from the loop's grants
        // A key of its own may require tokens too, on a plan that does not.
        let perKey = try await harness.key { $0.requireJWT = true }
        #expect(try await post(perKey, nil).status == 401)
        #expect(try await post(perKey, good).status == 200)

        // Refusals, each saying why.
        let refusals: [(String, String)] = [
            (try await token(Self.claims(expiresIn: -120)), "JWT expired"),
            (try await token(Self.claims(issuer: "https://evil.test")), "issuer"),
            (try await token(Self.claims(audience: "someone-else")), "audience"),
            (try await token(Self.claims(notBefore: 600)), "not valid yet"),
            (try await token(Self.claims(), kid: "k2"), "JWT not valid"),
            (try await token(Self.claims(), kid: "h1"), "algorithm HS256 not accepted"),
            (String(good.dropLast(4)) + "AAAA", "JWT not valid"),
            ("not.a.jwt", "JWT malformed"),
        ]
        for (bad, reason) in refusals {
            let answer = try await post(locked, bad)
            #expect(answer.status == 401, "\(reason)")
            #expect(answer.body.jsonObject?.errorMessage?.contains(reason) == true, "\(reason): \(answer.body)")
        }

        // A token narrows the key: methods, addresses, origins.
        let a = "0x" + String(repeating: "a", count: 40)
        let b = "0x" + String(repeating: "b", count: 40)
        let narrow = try await token(Self.claims(methods: ["eth_chainId", "eth_getBalance"], addresses: [a], origins: ["https://app.example"]))
        #expect(try await post(open, narrow).status == 200)
        #expect(try await post(open, narrow, body: #"{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}"#).status == 403)
        #expect(try await post(open, narrow, body: #"{"jsonrpc":"2.0","id":3,"method":"eth_getBalance","params":["\#(a)","latest"]}"#).status == 200)
        let other = try await post(open, narrow, body: #"{"jsonrpc":"2.0","id":4,"method":"eth_getBalance","params":["\#(b)","latest"]}"#)
        #expect(other.status == 403 && other.body.jsonObject?.errorMessage == "address \(b) not allowed for this key")
        #expect(try await post(open, narrow, origin: "https://evil.example").status == 403)
        #expect(try await post(open, narrow, origin: "https://app.example").status == 200)

        // Rotation: the issuer publishes its next key; tokens signed with it work once the file is read.
        let nextKey = try await token(Self.claims(), kid: "k2")
        try #"{"keys":[\#(Self.jwk(first, kid: "k1")),\#(Self.jwk(second, kid: "k2"))]}"#.write(toFile: jwks, atomically: true, encoding: .utf8)
        #expect(await eventually { (try? await harness.metric(#"tollgate_jwt_key_reloads_total{result="loaded"}"#)) == 1 })
        #expect(try await post(locked, nextKey).status == 200)
        // A file that does not load is refused; the keys in force stay.
        try "{ not json".write(toFile: jwks, atomically: true, encoding: .utf8)
        #expect(await eventually { (try? await harness.metric(#"tollgate_jwt_key_reloads_total{result="refused"}"#)) == 1 })
        let fresh = try await token(Self.claims(expiresIn: 200), kid: "k2")
        #expect(try await post(locked, fresh).status == 200)
        #expect(try await harness.metric(#"tollgate_auth_failures_total{reason="jwt"}"#) >= 9)
        try await harness.stop()
        await node.stop()
    }

    @Test func aPEMPublicKeyIsAcceptedAndBadKeyFilesAreConfigErrors() async throws {
        let key = ES256PrivateKey()
        let verifier = try await JWTVerifier.make(settings: JWTSettings(), keysText: key.publicKey.pemRepresentation)
        let signer = JWTKeyCollection()
        await signer.add(ecdsa: key)
        let token = try await signer.sign(Self.claims())
        guard case .success = await verifier.verify(token, nowSeconds: Int64(Date().timeIntervalSince1970)) else {
            Issue.record("a token signed by the PEM key was refused"); return
        }
        await #expect(throws: (any Error).self) { _ = try await JWTVerifier.make(settings: JWTSettings(), keysText: "-----BEGIN NOTHING-----") }
        let base = GatewayHarness.defaultYAML.replacingOccurrences(of: "{NODE0}", with: "http://127.0.0.1:1")
        #expect(throws: ConfigErrors.self) { _ = try ConfigReader.parse(yaml: base + "\nauth:\n  jwt: {keys_file: /nonexistent/jwks.json}\n") }
        #expect(throws: ConfigErrors.self) { _ = try ConfigReader.parse(yaml: base + "\nauth:\n  jwt: {keys_file: /etc/hostname, algorithms: [HS256]}\n") }
        #expect(throws: ConfigErrors.self) { _ = try ConfigReader.parse(yaml: base + "\nauth:\n  jwt: {algorithms: [ES256]}\n") }
    }
}
