import NIOSSL
import Synchronization

/// The admin listener's certificate and key, swapped on reload. Hummingbird builds the
/// listener's TLS context once, so the swap goes through NIOSSL's per-handshake callback
/// (`sslContextCallback`): every new handshake is given the pair current at that moment, and
/// open connections keep the one they were made with, as on the gateway's listeners.
final class AdminCertificate: Sendable {
    private let current: Mutex<NIOSSLContextConfigurationOverride>

    init(_ config: ServerTLSConfig) throws {
        current = Mutex(try Self.override(config))
    }

    /// The listener's configuration, answering each handshake from this holder.
    func configuration(_ config: ServerTLSConfig) throws -> TLSConfiguration {
        var configuration = try config.makeConfiguration()
        configuration.sslContextCallback = { [self] _, promise in promise.succeed(current.withLock { $0 }) }
        return configuration
    }

    /// Loads the files as they are now; a pair that does not load (or a key that is not the
    /// certificate's) throws and leaves the current pair in place.
    func reload(_ config: ServerTLSConfig) throws {
        let override = try Self.override(config)
        current.withLock { $0 = override }
    }

    private static func override(_ config: ServerTLSConfig) throws -> NIOSSLContextConfigurationOverride {
        _ = try config.makeContext()  // NIOSSL checks here that the key is the certificate's
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = try NIOSSLCertificate.fromPEMFile(config.certFile).map { .certificate($0) }
        override.privateKey = .privateKey(try NIOSSLPrivateKey(file: config.keyFile, format: .pem))
        return override
    }
}
