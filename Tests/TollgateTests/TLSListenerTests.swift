import Foundation
import NIOCore
import NIOSSL
import Synchronization
import Testing
import TollgateApp
import TollgateTestSupport

/// HTTPS on Tollgate's own listeners with certificates from a fresh test CA
/// (`scripts/servers/certs`): handshakes, client certificates when required, and certificate
/// rotation that new connections see while open ones keep working.
@Suite struct TLSListenerTests {
    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/certs")

    /// A fresh CA with a server and a client pair in a temp folder.
    static func certificates() async throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-certs-\(UUID().uuidString)").path
        try await ClickHouseServer.script([script, dir])
        return dir
    }

    /// - Parameter metricsTLS: the ops listener on HTTPS with client certificates required.
    static func yaml(_ dir: String, tls: String, metricsTLS: Bool = false) -> String {
        GatewayHarness.oneNodeYAML + """
            server:
              tls: {cert_file: \(dir)/server.crt, key_file: \(dir)/server.key, reload_interval_ms: 100\(tls)}
            \(metricsTLS ? "  metrics_tls: {cert_file: \(dir)/server.crt, key_file: \(dir)/server.key, client_ca_file: \(dir)/ca.crt}" : "")

            """
    }

    /// A client context trusting the test CA, optionally presenting the test client pair.
    static func client(_ dir: String, certificate: Bool = false) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(dir + "/ca.crt")
        configuration.certificateVerification = .noHostnameVerification
        if certificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(dir + "/client.crt").map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: dir + "/client.key", format: .pem))
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static let chainID = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#

    /// One request over a fresh TLS connection: the response, or nil when the server refused it.
    static func post(_ harness: GatewayHarness, key: String, tls: NIOSSLContext) async throws -> (TestResponse?, NIOSSLCertificate?) {
        let client = try await TestHTTPClient.connect(port: harness.port, tls: tls)
        defer { Task { await client.close() } }
        try? await client.send(raw: TestHTTPClient.requestBytes(path: "/v1/ethereum/\(key)", body: Array(chainID.utf8)))
        let response = try? await client.next()
        return (response ?? nil, try? await client.peerCertificate())
    }

    @Test func httpsServesTheGatewayAndPlainHTTPGetsNothing() async throws {
        let dir = try await Self.certificates()
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(dir, tls: ""))
        let key = try await harness.key()
        let (response, _) = try await Self.post(harness, key: key, tls: try Self.client(dir))
        #expect(response?.status == 200)
        #expect(response?.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
        // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
        let plain = try await TestHTTPClient.connect(port: harness.port)
        try await plain.send(raw: TestHTTPClient.requestBytes(path: "/v1/ethereum/\(key)", body: Array(Self.chainID.utf8)))
        #expect(try await plain.next() == nil)
        await plain.close()
        try await harness.stop()
        await node.stop()
    }

    @Test func aRequiredClientCertificateIsRefusedWhenMissing() async throws {
        let dir = try await Self.certificates()
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(
            nodes: [node], yaml: Self.yaml(dir, tls: ", client_ca_file: \(dir)/ca.crt, require_client_cert: true", metricsTLS: true))
        let key = try await harness.key()
        #expect(try await Self.post(harness, key: key, tls: try Self.client(dir)).0 == nil)
        #expect(try await Self.post(harness, key: key, tls: try Self.client(dir, certificate: true)).0?.status == 200)
        // The ops listener asks for one too (Prometheus scraping with its client certificate).
        let scrape = { (certificate: Bool) async throws -> TestResponse? in
            let client = try await TestHTTPClient.connect(port: harness.metricsPort, tls: try Self.client(dir, certificate: certificate))
            defer { Task { await client.close() } }
            try? await client.send(raw: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            return (try? await client.next()) ?? nil
        }
        #expect(try await scrape(false) == nil)
        #expect(try await scrape(true)?.body.contains("tollgate_requests_total") == true)
        try await harness.stop()
        await node.stop()
    }

    @Test func aRotatedCertificateReachesNewConnectionsAndOpenOnesKeepTheirs() async throws {
        let dir = try await Self.certificates()
        try await ClickHouseServer.script([Self.script, dir, "issue", "second"])
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(dir, tls: ""))
        let key = try await harness.key()
        let tls = try Self.client(dir)
        let first = try NIOSSLCertificate.fromPEMFile(dir + "/server.crt")[0]
        let second = try NIOSSLCertificate.fromPEMFile(dir + "/second.crt")[0]

        let open = try await TestHTTPClient.connect(port: harness.port, tls: tls)
        #expect(try await open.request(path: "/v1/ethereum/\(key)", body: Self.chainID).status == 200)
        #expect(try await open.peerCertificate() == first)

        // Clients keep making new connections throughout the rotation.
        let answeredSoFar = Atomic<Int>(0)
        let load = Task {
            var failures = 0
            var answered = 0
            while !Task.isCancelled {
                let status = try? await Self.post(harness, key: key, tls: tls).0?.status
                if Task.isCancelled { break }  // the last one may be cut short by the cancellation itself
                if status == 200 { answered += 1; answeredSoFar.add(1, ordering: .relaxed) } else { failures += 1 }
            }
            return (answered, failures)
        }
        // The load is under way before the files change (a slow machine may take a while to connect).
        #expect(await eventually { answeredSoFar.load(ordering: .relaxed) >= 3 })
        // Rotate: the key first, then the certificate (as a careless deploy would: a moment
        // where the pair does not match is refused, not served).
        try FileManager.default.removeItem(atPath: dir + "/server.key")
        try FileManager.default.copyItem(atPath: dir + "/second.key", toPath: dir + "/server.key")
        try FileManager.default.removeItem(atPath: dir + "/server.crt")
        try FileManager.default.copyItem(atPath: dir + "/second.crt", toPath: dir + "/server.crt")
        #expect(await eventually { try await Self.post(harness, key: key, tls: tls).1 == second })
        load.cancel()
        let (answered, failures) = await load.value
        #expect(answered > 0 && failures == 0)
        #expect(try await harness.metric(#"tollgate_tls_reloads_total{listener="server.tls",result="loaded"}"#) >= 1)
        // The connection opened before the rotation still works, on its old certificate.
        #expect(try await open.request(path: "/v1/ethereum/\(key)", body: Self.chainID).status == 200)
        #expect(try await open.peerCertificate() == first)
        await open.close()

        // A broken pair (the key of another certificate): refused, the second pair stays.
        let refused = #"tollgate_tls_reloads_total{listener="server.tls",result="refused"}"#
        let refusedBefore = try await harness.metric(refused)
        try FileManager.default.removeItem(atPath: dir + "/server.crt")
        try FileManager.default.copyItem(atPath: dir + "/client.crt", toPath: dir + "/server.crt")
        #expect(await eventually { try await harness.metric(refused) > refusedBefore })
        let (response, presented) = try await Self.post(harness, key: key, tls: tls)
        #expect(response?.status == 200)
        #expect(presented == second)
        try await harness.stop()
        await node.stop()
    }

    @Test func aPairThatDoesNotLoadStopsTheStartWithItsReason() async throws {
        let dir = try await Self.certificates()
        try FileManager.default.removeItem(atPath: dir + "/server.key")
        try FileManager.default.copyItem(atPath: dir + "/client.key", toPath: dir + "/server.key")
        let node = try await FakeNode.start()
        await #expect(throws: (any Error).self) { try await GatewayHarness.start(nodes: [node], yaml: Self.yaml(dir, tls: "")) }
        await node.stop()
    }
}
