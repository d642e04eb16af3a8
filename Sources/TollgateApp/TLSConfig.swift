import Crypto
import Foundation
import NIOSSL
import TollgateDataPlane
import Yams

/// `server.tls` / `server.metrics_tls`: HTTPS on a listener from PEM files, optionally
/// requiring client certificates signed by `client_ca_file` (mTLS).
public struct ServerTLSConfig: Sendable, Equatable {
    public var certFile: String
    public var keyFile: String
    public var clientCAFile: String?
    /// With a client CA: true refuses handshakes without a trusted client certificate;
    /// false asks for one and verifies it when sent.
    public var requireClientCert = true
    public var minVersion: TLSVersion = .tlsv12
    /// How often the files are checked for a new pair (SIGHUP checks at once).
    public var reloadIntervalMillis = 5_000

    public init(certFile: String, keyFile: String) {
        self.certFile = certFile
        self.keyFile = keyFile
    }

    /// The files' contents, to tell a rotation from nothing (mtimes are too coarse).
    func fingerprint() -> [UInt8]? {
        var hasher = SHA256()
        for path in [certFile, keyFile] + (clientCAFile.map { [$0] } ?? []) {
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            hasher.update(data: data)
        }
        return Array(hasher.finalize())
    }

    /// A server context from the files as they are now; throws with what is wrong.
    func makeContext() throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certFile)
        guard !chain.isEmpty else { throw TLSFileError("\(certFile) holds no certificate") }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = minVersion
        configuration.applicationProtocols = ["http/1.1"]
        if let clientCAFile {
            configuration.trustRoots = .file(clientCAFile)
            configuration.certificateVerification = requireClientCert ? .noHostnameVerification : .optionalVerification
        }
        // NIOSSL checks that the key belongs to the certificate when the context is made.
        return try NIOSSLContext(configuration: configuration)
    }
}

struct TLSFileError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ConfigReader {
    mutating func readServerTLS(_ node: Node, _ path: String) -> ServerTLSConfig? {
        let keys: Set<String> = ["cert_file", "key_file", "client_ca_file", "require_client_cert", "min_version", "reload_interval_ms"]
        guard let map = mapping(node, path, keys: keys) else { return nil }
        func file(_ key: String) -> String? {
            guard let value = map[key] else { return nil }
            guard let text = string(value, "\(path).\(key)") else { return nil }
            if !readableFile(text) { issue("\(path).\(key)", "cannot read \(text)") }
            return text
        }
        let cert = file("cert_file")
        let key = file("key_file")
        if map["cert_file"] == nil { issue("\(path).cert_file", "is required") }
        if map["key_file"] == nil { issue("\(path).key_file", "is required") }
        guard let cert, let key else { return nil }
        var tls = ServerTLSConfig(certFile: cert, keyFile: key)
        tls.clientCAFile = file("client_ca_file")
        if let value = map["require_client_cert"], let flag = boolean(value, "\(path).require_client_cert") { tls.requireClientCert = flag }
        if let value = map["min_version"], let text = string(value, "\(path).min_version") {
            switch text {
            case "1.2": tls.minVersion = .tlsv12
            case "1.3": tls.minVersion = .tlsv13
            default: issue("\(path).min_version", "must be 1.2 or 1.3")
            }
        }
        if let value = map["reload_interval_ms"], let ms = integer(value, "\(path).reload_interval_ms", min: 100) { tls.reloadIntervalMillis = ms }
        return tls
    }
}
