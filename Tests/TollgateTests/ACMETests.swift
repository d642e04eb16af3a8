import Crypto
import Foundation
import NIOSSL
import Testing
import TollgateACME
import TollgateApp
import TollgateTestSupport
import X509

/// ACME's pieces on plain values: the renewal schedule, the account key's JWS, the CSR.
@Suite struct ACMEPartsTests {
    @Test func renewalIsDueAtOnceWithoutACertificateAtAThirdOfItsLifeLeftAndBacksOffAfterFailures() {
        let schedule = RenewalSchedule()
        #expect(schedule.nextAttempt(current: nil, failures: 0, lastAttempt: nil, now: 1_000) == 1_000)
        // 90 days of life: due 30 days before the end.
        let day = 86_400.0
        let cert = RenewalSchedule.Current(notBefore: 0, notAfter: 90 * day)
        #expect(schedule.nextAttempt(current: cert, failures: 0, lastAttempt: nil, now: day) == 60 * day)
        // Failing from day 60 on: 1 min, 2 min, 4 min … capped at an hour, never past an hour before expiry.
        #expect(schedule.nextAttempt(current: cert, failures: 1, lastAttempt: 60 * day, now: 60 * day) == 60 * day + 60)
        #expect(schedule.nextAttempt(current: cert, failures: 3, lastAttempt: 60 * day, now: 60 * day) == 60 * day + 240)
        #expect(schedule.nextAttempt(current: cert, failures: 30, lastAttempt: 60 * day, now: 60 * day) == 60 * day + 3_600)
        #expect(schedule.nextAttempt(current: cert, failures: 30, lastAttempt: 90 * day - 100, now: 90 * day - 100) == 90 * day - 3_600)
        // Without a certificate, failures back off too (a CA that is down is not hammered).
        #expect(schedule.nextAttempt(current: nil, failures: 2, lastAttempt: 500, now: 510) == 620)
        // renew_before_days overrides the third.
        #expect(RenewalSchedule(renewBefore: 10 * day).nextAttempt(current: cert, failures: 0, lastAttempt: nil, now: 0) == 80 * day)
    }

    @Test func aJWSVerifiesWithTheAccountKeyAndCarriesItsJWKOrKid() throws {
        let account = AccountKey()
        let jws = try account.sign(url: "https://ca/new-order", nonce: "n1", kid: nil, payload: #"{"a":1}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: jws) as? [String: String])
        func decoded(_ field: String) throws -> Data {
            let text = try #require(object[field])
            return try #require(Base64URL.decode(text))
        }
        let header = String(decoding: try decoded("protected"), as: UTF8.self)
        #expect(header.contains(#""alg":"ES256""#) && header.contains(#""jwk":{"crv":"P-256","kty":"EC""#) && header.contains(#""nonce":"n1""#))
        #expect(String(decoding: try decoded("payload"), as: UTF8.self) == #"{"a":1}"#)
        let signature = try P256.Signing.ECDSASignature(rawRepresentation: try decoded("signature"))
        #expect(account.key.publicKey.isValidSignature(signature, for: Data((object["protected"]! + "." + object["payload"]!).utf8)))
        // With an account URL the kid replaces the key; POST-as-GET has an empty payload.
        let asGet = try #require(try JSONSerialization.jsonObject(with: try account.sign(url: "u", nonce: "n2", kid: "https://ca/acct/1", payload: nil)) as? [String: String])
        #expect(asGet["payload"] == "")
        #expect(String(decoding: Base64URL.decode(asGet["protected"]!)!, as: UTF8.self).contains(#""kid":"https://ca/acct/1""#))
        // The thumbprint is SHA-256 over the canonical JWK; a stored key gives the same one back.
        #expect(try AccountKey(pem: account.pem).thumbprint == account.thumbprint)
        #expect(account.keyAuthorization("tok") == "tok." + account.thumbprint)
        #expect(!account.thumbprint.contains("=") && !account.thumbprint.contains("+") && !account.thumbprint.contains("/"))
    }

    @Test func theCSRNamesEveryDomainAndAPlaceholderIsNotMistakenForTheCAs() throws {
        let key = P256.Signing.PrivateKey()
        let der = try CertificateFactory.csr(domains: ["rpc.example.com", "eth.example.com"], key: key)
        let csr = try CertificateSigningRequest(derEncoded: der)
        #expect(csr.publicKey == Certificate.PublicKey(key.publicKey))
        let request = try #require(try csr.attributes.extensionRequest)
        let names = try #require(try request.extensions.subjectAlternativeNames)
        #expect(names.count == 2 && names.contains(.dnsName("rpc.example.com")) && names.contains(.dnsName("eth.example.com")))
        #expect(csr.publicKey.isValidSignature(csr.signature, for: csr))
        let placeholder = try CertificateFactory.placeholder(domains: ["rpc.example.com"], key: key)
        #expect(CertificateFactory.inspect(pem: placeholder, domains: ["rpc.example.com"]) == nil)
        #expect(CertificateFactory.inspect(pem: "not a certificate", domains: ["rpc.example.com"]) == nil)
    }
}

/// `server.tls.acme` end to end against Pebble, Let's Encrypt's RFC 8555 test CA
/// (`scripts/servers/pebble`), on loopback: the certificate is ordered, proved over HTTP-01 on
/// Tollgate's challenge listener, stored, served, renewed through the reload path, kept when
/// the CA is down, and reused from storage after a restart.
@Suite(.serialized) struct ACMETests {
    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/pebble")
    static let domain = "rpc.tollgate.test"

    static func yaml(_ dir: String, acme: Int, http: Int, challenge: String = "http-01") -> String {
        GatewayHarness.oneNodeYAML + """
            server:
              tls:
                acme:
                  directory_url: https://localhost:\(acme)/dir
                  directory_ca_file: \(dir)/pebble/certs/ca.crt
                  email: ops@tollgate.test
                  domains: [\(domain)]
                  storage_dir: \(dir)/acme
                  http_listen: 127.0.0.1:\(http)
                  challenge: \(challenge)

            """
    }

    /// A client that trusts only Pebble's issuing root and checks the name.
    static func client(_ dir: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(dir + "/pebble/root.pem")
        return try NIOSSLContext(configuration: configuration)
    }

    /// One request over a fresh verified TLS connection: the answer's status and the certificate
    /// shown, or nil when the handshake was refused.
    static func post(_ port: Int, key: String, tls: NIOSSLContext) async -> (Int, NIOSSLCertificate?)? {
        guard let client = try? await TestHTTPClient.connect(port: port, tls: tls, serverHostname: domain) else { return nil }
        defer { Task { await client.close() } }
        guard (try? await client.send(raw: TestHTTPClient.requestBytes(path: "/v1/ethereum/\(key)", body: Array(TLSListenerTests.chainID.utf8)))) != nil,
            let response = try? await client.next()
        else { return nil }
        return (response.status, try? await client.peerCertificate())
    }

    /// TLS-ALPN-01 (RFC 8737): no plain listener; Pebble checks the challenge certificate on the
    /// gateway's own TLS port, which gives it only to a hello offering just `acme-tls/1` for the
    /// domain (`TLSHelloRouterTests`). The certificate arrives and is served.
    @Test func aCertificateProvedOverTLSALPNIsServed() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-acme-\(UUID().uuidString)").path
        let base = try await ClickHouseServer.freePortRun(6, range: 24_000...31_900)
        // Pebble checks TLS-ALPN-01 on the port after its HTTP-01 one: the gateway listens there.
        let (acme, management, dns, http, tlsPort) = (base, base + 1, base + 2, base + 4, base + 5)
        try await ClickHouseServer.script([Self.script, "start", dir + "/pebble", String(acme), String(management), String(dns), String(http)])
        defer { try? ClickHouseServer.run([Self.script, "stop", dir + "/pebble"]) }
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(
            nodes: [node], yaml: Self.yaml(dir, acme: acme, http: http, challenge: "tls-alpn-01"), directory: dir, port: tlsPort)
        let key = try await harness.key()
        let tls = try Self.client(dir)
        #expect(await eventually(timeout: .seconds(60)) { await Self.post(harness.port, key: key, tls: tls)?.0 == 200 })
        #expect(try await harness.metric(#"tollgate_acme_orders_total{result="issued"}"#) >= 1)
        // Nothing listens on the HTTP-01 port: the domain was proved over TLS.
        await #expect(throws: (any Error).self) { _ = try await TestHTTPClient.connect(port: http) }
        try await harness.stop()
        await node.stop()
    }

    @Test func aCertificateFromPebbleIsServedStoredRenewedAndKeptWhenTheCAIsDown() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-acme-\(UUID().uuidString)").path
        let base = try await ClickHouseServer.freePortRun(5, range: 24_000...31_900)
        let (acme, management, dns, http) = (base, base + 1, base + 2, base + 4)
        try await ClickHouseServer.script([Self.script, "start", dir + "/pebble", String(acme), String(management), String(dns), String(http)])
        defer { try? ClickHouseServer.run([Self.script, "stop", dir + "/pebble"]) }
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(dir, acme: acme, http: http), directory: dir)
        let key = try await harness.key()
        let tls = try Self.client(dir)

        // Issued at start (the listener serves a placeholder until then, which this client refuses).
        #expect(await eventually(timeout: .seconds(60)) { await Self.post(harness.port, key: key, tls: tls)?.0 == 200 })
        let first = try #require(await Self.post(harness.port, key: key, tls: tls)?.1)
        #expect(try await harness.metric(#"tollgate_acme_orders_total{result="issued"}"#) >= 1)
        for file in ["account.pem", "cert.pem", "key.pem"] { #expect(FileManager.default.fileExists(atPath: "\(dir)/acme/\(file)")) }
        let mode = try FileManager.default.attributesOfItem(atPath: "\(dir)/acme/key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // A renewal: new connections get the new certificate; an open one keeps its own.
        let open = try await TestHTTPClient.connect(port: harness.port, tls: tls, serverHostname: Self.domain)
        #expect(try await open.request(path: "/v1/ethereum/\(key)", body: TLSListenerTests.chainID).status == 200)
        let acmeService = try #require(harness.app.acme)
        #expect(await acmeService.renewNow())
        let second = try #require(await Self.post(harness.port, key: key, tls: tls)?.1)
        #expect(second != first)
        #expect(try await open.request(path: "/v1/ethereum/\(key)", body: TLSListenerTests.chainID).status == 200)
        #expect(try await open.peerCertificate() == first)
        await open.close()

        // The CA goes away: the attempt fails, is counted, and the certificate served stays.
        try ClickHouseServer.run([Self.script, "stop", dir + "/pebble"])
        #expect(await !acmeService.renewNow())
        #expect(try await harness.metric(#"tollgate_acme_orders_total{result="failed"}"#) >= 1)
        #expect(await Self.post(harness.port, key: key, tls: tls)?.1 == second)
        try await harness.stop()

        // A restart with the CA still down serves the stored certificate at once.
        let again = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(dir, acme: acme, http: http), directory: dir)
        let served = await Self.post(again.port, key: key, tls: tls)
        #expect(served?.0 == 200 && served?.1 == second)
        try await again.stop()
        await node.stop()
    }
}
