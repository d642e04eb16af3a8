import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// `tollgate reload --url`: `POST /reload` on a running server's ops listener, which answers
/// with what it applied, what needs a restart and, for a file with errors, the errors (the
/// config in force then stays). With the ops listener on HTTPS and mTLS, the client's files.
public enum ReloadRequest {
    public struct Answer: Sendable {
        public var status: Int
        public var body: String
    }

    public static func post(url: String, caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil) async throws -> Answer {
        var configuration = HTTPClient.Configuration()
        if caFile != nil || certFile != nil {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile { tls.trustRoots = .file(caFile) }
            if let certFile, let keyFile {
                tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            }
            configuration.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            var request = HTTPClientRequest(url: (url.hasSuffix("/") ? String(url.dropLast()) : url) + "/reload")
            request.method = .POST
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            try await client.shutdown()
            return Answer(status: Int(response.status.code), body: String(buffer: body))
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}
