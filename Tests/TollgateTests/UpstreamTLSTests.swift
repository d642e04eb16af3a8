import Foundation
import NIOSSL
import Testing
import TollgateApp
import TollgateTestSupport

/// TLS toward nodes beyond the system's roots (`upstreams[].tls_ca_file`, `tls_cert_file`,
/// `tls_key_file`): a node behind a private CA that requires a client certificate (a SPIFFE or
/// cert-manager identity) is reached with one, and refused without it, without the CA, or when
/// its certificate names another host. Fake nodes serve HTTPS with a fresh test CA.
@Suite struct UpstreamTLSTests {
    /// The node's side: the given pair, and client certificates from the test CA required when asked.
    static func nodeTLS(_ dir: String, pair: String = "server", requireClient: Bool) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile("\(dir)/\(pair).crt").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: "\(dir)/\(pair).key", format: .pem)))
        if requireClient {
            configuration.trustRoots = .file(dir + "/ca.crt")
            configuration.certificateVerification = .noHostnameVerification
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static func yaml(_ files: String) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: {NODE0}
        \(files.isEmpty ? "" : "        " + files)
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000

        """
    }

    static func status(node: FakeNode, files: String) async throws -> (Int, String) {
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml(files))
        let key = try await harness.key()
        let response = try await harness.post(TLSListenerTests.chainID, key: key)
        try await harness.stop()
        return (response.status, response.body)
    }

    @Test func aNodeThatRequiresAClientCertificateIsReachedWithOne() async throws {
        let dir = try await TLSListenerTests.certificates()
        let node = try await FakeNode.start(tls: try Self.nodeTLS(dir, requireClient: true))
        let files = "tls_ca_file: \(dir)/ca.crt\n        tls_cert_file: \(dir)/client.crt\n        tls_key_file: \(dir)/client.key"
        let (status, body) = try await Self.status(node: node, files: files)
        #expect(status == 200)
        #expect(body == #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#)
        #expect(node.requestCount == 1)

        // Without the client certificate the node refuses the handshake; without the private CA
        // Tollgate refuses the node. Either way no request reaches it and the client gets a 5xx.
        for files in ["tls_ca_file: \(dir)/ca.crt", "tls_cert_file: \(dir)/client.crt\n        tls_key_file: \(dir)/client.key"] {
            let (refused, _) = try await Self.status(node: node, files: files)
            #expect((502...504).contains(refused), "\(files)")
        }
        #expect(node.requestCount == 1)
        await node.stop()
    }

    @Test func aNodeWhoseCertificateNamesAnotherHostIsRefused() async throws {
        let dir = try await TLSListenerTests.certificates()
        try await ClickHouseServer.script([TLSListenerTests.script, dir, "issue", "elsewhere", "DNS:other.example"])
        let node = try await FakeNode.start(tls: try Self.nodeTLS(dir, pair: "elsewhere", requireClient: false))
        let (status, _) = try await Self.status(node: node, files: "tls_ca_file: \(dir)/ca.crt")
        #expect((502...504).contains(status))
        #expect(node.requestCount == 0)
        await node.stop()
    }

    @Test func tlsFilesNeedAnHTTPSNodeAndComeInPairs() throws {
        let text = """
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: http://127.0.0.1:8545
                    tls_cert_file: /etc/hostname
            """
        var problems = ""
        do { _ = try ConfigReader.parse(yaml: text) } catch { problems = error.description }
        #expect(problems.contains("tls_cert_file and tls_key_file go together"))
        #expect(problems.contains("TLS files need an https:// url"))
    }
}
