import NIOSSL

extension TLSConfiguration {
    /// A client configuration that verifies the server (chain and host name) against `caFile`
    /// (PEM), or the system's roots when nil, and with `certificate` and `key` presents that pair
    /// to servers that ask for one (mTLS: a SPIFFE or cert-manager identity). One place for every
    /// backend Tollgate dials: nodes, Redis, PostgreSQL, ClickHouse, an ACME directory, the ops
    /// listener. Throws with what does not load.
    public static func client(trusting caFile: String?, certificate: String? = nil, key: String? = nil) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile { configuration.trustRoots = .file(caFile) }
        if let certificate, let key {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        return configuration
    }
}
