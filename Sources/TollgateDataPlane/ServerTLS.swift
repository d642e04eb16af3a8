import NIOSSL
import Synchronization

/// The TLS context a listener's new connections handshake with. Replaced as a whole when the
/// certificate or key changes (`TLSReloadService`): a connection takes the context current
/// when it was accepted and keeps it, so open connections are never dropped by a reload.
public final class ServerTLS: Sendable {
    private let current: Mutex<NIOSSLContext>

    public init(_ context: NIOSSLContext) {
        current = Mutex(context)
    }

    public var context: NIOSSLContext { current.withLock { $0 } }

    public func replace(_ context: NIOSSLContext) {
        current.withLock { $0 = context }
    }
}
