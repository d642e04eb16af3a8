import NIOSSL
import TollgateTLS

/// A node's own TLS client context, for a node that needs more than the system's roots: a
/// private CA (`upstreams[].tls_ca_file`) and/or a client certificate (`tls_cert_file`,
/// `tls_key_file`: a SPIFFE or cert-manager identity). Nodes without one use the pool's context.
/// Equal when made from the same files, so a config compare sees no change where none was made.
public final class UpstreamTLS: Sendable, Equatable {
    public let context: NIOSSLContext
    /// The files it was made from (CA, certificate, key), for equality and logs.
    public let files: [String]

    public init(context: NIOSSLContext, files: [String]) {
        self.context = context
        self.files = files
    }

    public static func == (lhs: UpstreamTLS, rhs: UpstreamTLS) -> Bool { lhs.files == rhs.files }

    /// A client context: hostname and chain verified against `caFile` (else the system's
    /// roots), presenting the certificate and key when given. Throws with what does not load.
    public static func make(caFile: String?, certFile: String?, keyFile: String?) throws -> UpstreamTLS {
        let configuration = try TLSConfiguration.client(trusting: caFile, certificate: certFile, key: keyFile)
        return UpstreamTLS(context: try NIOSSLContext(configuration: configuration), files: [caFile ?? "", certFile ?? "", keyFile ?? ""])
    }
}
