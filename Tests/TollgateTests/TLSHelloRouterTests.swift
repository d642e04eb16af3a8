import Crypto
import Foundation
import NIOCore
import NIOEmbedded
import TollgateTestSupport
import NIOSSL
import Testing
import TollgateACME
@testable import TollgateDataPlane

/// TLS-ALPN-01's routing on plain values and in-memory handshakes: the ClientHello is read for
/// its server name and protocols, and only a hello offering just `acme-tls/1` for a domain being
/// proved gets the challenge certificate; every other client gets the listener's own.
@Suite struct TLSHelloRouterTests {
    static let domain = "rpc.tollgate.test"

    /// A gateway doing TLS-ALPN-01 (its CA unreachable, so it keeps its placeholder) with a
    /// challenge in progress for the domain: real clients over loopback, each with its own ALPN.
    @Test func onlyTheValidatorsHelloGetsTheChallengeCertificate() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-acme-\(UUID().uuidString)").path
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.oneNodeYAML + """
            server:
              tls:
                acme:
                  directory_url: https://127.0.0.1:1/dir
                  domains: [\(Self.domain)]
                  storage_dir: \(dir)/acme
                  challenge: tls-alpn-01

            """, directory: dir)
        let acme = try #require(harness.app.acme)
        let key = P256.Signing.PrivateKey()
        let proof = try CertificateFactory.alpnChallenge(domain: Self.domain, keyAuthorization: "token.thumbprint", key: key)
        acme.alpn.set(Self.domain, .init(certificatePEM: proof, keyPEM: key.pemRepresentation))
        let challenge = try NIOSSLCertificate.fromPEMBytes(Array(proof.utf8))[0]

        func shown(alpn: [String], serverName: String?) async throws -> NIOSSLCertificate? {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            configuration.applicationProtocols = alpn
            let client = try await TestHTTPClient.connect(port: harness.port, tls: try NIOSSLContext(configuration: configuration), serverHostname: serverName)
            defer { Task { await client.close() } }
            // The handshake finishes after the connection is made.
            var certificate: NIOSSLCertificate?
            _ = await eventually(timeout: .seconds(5)) {
                certificate = try await client.peerCertificate()
                return certificate != nil
            }
            return certificate
        }
        #expect(try await shown(alpn: ["acme-tls/1"], serverName: Self.domain) == challenge)
        // A browser or an RPC client: its own protocols, the listener's certificate.
        for (alpn, name) in [(["h2", "http/1.1"], Self.domain), (["acme-tls/1", "http/1.1"], Self.domain), (["acme-tls/1"], "other.test"), ([], nil)] as [([String], String?)] {
            let certificate = try await shown(alpn: alpn, serverName: name)
            #expect(certificate != nil && certificate != challenge, "\(alpn) \(name ?? "-")")
        }
        // Once the challenge is over, the validator's hello gets the listener's certificate too.
        acme.alpn.remove(Self.domain)
        #expect(try await shown(alpn: ["acme-tls/1"], serverName: Self.domain) != challenge)
        try await harness.stop()
        await node.stop()
    }

    @Test func aHelloIsReadOnlyWhenWholeAndAnythingElseIsLeftAlone() throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = ["acme-tls/1"]
        let client = EmbeddedChannel(handler: try NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration), serverHostname: Self.domain))
        _ = try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        let hello = try #require(try client.readOutbound(as: ByteBuffer.self))
        for cut in [0, 4, 5, 40, hello.readableBytes - 1] {
            #expect(TLSClientHello.read(hello.getSlice(at: hello.readerIndex, length: cut)!) == .incomplete, "\(cut)")
        }
        #expect(TLSClientHello.read(hello) == .hello(serverName: Self.domain, protocols: ["acme-tls/1"]))
        #expect(TLSClientHello.read(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")) == .other)
        // A record claiming more than TLS allows is not waited for.
        #expect(TLSClientHello.read(ByteBuffer(bytes: [22, 3, 1, 0xFF, 0xFF])) == .other)
        _ = try? client.finish()
    }
}
