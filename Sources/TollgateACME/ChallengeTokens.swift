import Hummingbird
import Logging
import Synchronization

/// The HTTP-01 key authorizations being proved right now, by token. `ACMEClient` sets one
/// before telling the CA to look and removes it when the order is done; the challenge
/// listener answers `GET /.well-known/acme-challenge/{token}` from it.
public final class ChallengeTokens: Sendable {
    private let tokens = Mutex<[String: String]>([:])

    public init() {}

    public func set(_ token: String, _ keyAuthorization: String) { tokens.withLock { $0[token] = keyAuthorization } }
    public func remove(_ token: String) { _ = tokens.withLock { $0.removeValue(forKey: token) } }
    public func keyAuthorization(_ token: String) -> String? { tokens.withLock { $0[token] } }

    /// The plain-HTTP listener the CA validates against (`server.tls.acme.http_listen`, port 80
    /// in production): the challenge path, and 404 with a one-line reason for anything else.
    public func application(host: String, port: Int, logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        router.get("/.well-known/acme-challenge/{token}") { _, context -> Response in
            guard let token = context.parameters.get("token"), let answer = self.keyAuthorization(token) else {
                return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: "no such ACME challenge\n")))
            }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(string: answer)))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "tollgate-acme"), logger: logger)
    }
}
