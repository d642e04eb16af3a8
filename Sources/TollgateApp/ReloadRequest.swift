import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import TollgateTLS

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
            configuration.tlsConfiguration = try .client(trusting: caFile, certificate: certFile, key: keyFile)
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
