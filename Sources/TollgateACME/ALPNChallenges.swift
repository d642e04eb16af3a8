import Synchronization

/// The TLS-ALPN-01 certificates being proved right now, by domain (RFC 8737). `ACMEClient` sets
/// one before telling the CA to look and removes it when the authorization is done; the
/// gateway's TLS listener hands it to a handshake that offers only `acme-tls/1` for that name
/// (the CA's validator), and never to anyone else.
public final class ALPNChallenges: Sendable {
    public struct Pair: Sendable, Equatable {
        public var certificatePEM: String
        public var keyPEM: String

        public init(certificatePEM: String, keyPEM: String) {
            self.certificatePEM = certificatePEM
            self.keyPEM = keyPEM
        }
    }

    private let pairs = Mutex<[String: Pair]>([:])

    public init() {}

    public func set(_ domain: String, _ pair: Pair) { pairs.withLock { $0[domain.lowercased()] = pair } }
    public func remove(_ domain: String) { _ = pairs.withLock { $0.removeValue(forKey: domain.lowercased()) } }
    public func pair(for domain: String) -> Pair? { pairs.withLock { $0[domain.lowercased()] } }
}
