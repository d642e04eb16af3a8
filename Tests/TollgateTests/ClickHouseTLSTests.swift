import Foundation
import Testing
import TollgateClickHouse

/// Telemetry toward a ClickHouse that serves HTTPS only to clients with a certificate from its
/// CA (`verificationMode: strict`): `telemetry.clickhouse.tls_ca_file`, `tls_cert_file` and
/// `tls_key_file` reach it; without the certificate, or without the CA, the query fails.
@Suite struct ClickHouseTLSTests {
    static func settings(_ server: ClickHouseServer, certificate: Bool, ca: Bool) -> ClickHouseSettings {
        var settings = ClickHouseSettings(urls: ["https://localhost:\(server.port + 3)"], database: "default", table: "requests")
        if ca { settings.tlsCAFile = server.directory + "/tls/ca.crt" }
        if certificate {
            settings.tlsCertFile = server.directory + "/tls/client.crt"
            settings.tlsKeyFile = server.directory + "/tls/client.key"
        }
        return settings
    }

    static func answer(_ settings: ClickHouseSettings) async throws -> String? {
        let client = ClickHouseClient(urls: settings.urls, user: nil, password: nil, tls: try settings.tlsConfiguration())
        defer { Task { await client.shutdown() } }
        guard var body = try? await client.execute("SELECT 40 + 2", timeout: .seconds(5)) else { return nil }
        return body.readString(length: body.readableBytes)?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aServerThatRequiresAClientCertificateIsReachedWithTheConfiguredPair() async throws {
        let server = try await ClickHouseServer.start(tls: true)
        defer { Task { await server.destroy() } }
        #expect(try await Self.answer(Self.settings(server, certificate: true, ca: true)) == "42")
        #expect(try await Self.answer(Self.settings(server, certificate: false, ca: true)) == nil)
        #expect(try await Self.answer(Self.settings(server, certificate: true, ca: false)) == nil)
    }
}
