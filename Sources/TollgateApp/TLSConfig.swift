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
    /// Certificates from an ACME CA instead of files someone else renews (the gateway listener
    /// only); `certFile` and `keyFile` are then where it stores them.
    public var acme: ACMEConfig?

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

    /// A server context from the files as they are now (or from these PEM texts); throws with
    /// what is wrong.
    func makeContext(certificatePEM: String? = nil, keyPEM: String? = nil) throws -> NIOSSLContext {
        let configuration = try makeConfiguration(certificatePEM: certificatePEM, keyPEM: keyPEM)
        // NIOSSL checks that the key belongs to the certificate when the context is made.
        return try NIOSSLContext(configuration: configuration)
    }

    /// The server configuration from the files (or these PEM texts), for listeners that take
    /// a configuration rather than a context (the admin listener's Hummingbird).
    func makeConfiguration(certificatePEM: String? = nil, keyPEM: String? = nil) throws -> TLSConfiguration {
        let chain = try certificatePEM.map { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) } ?? NIOSSLCertificate.fromPEMFile(certFile)
        guard !chain.isEmpty else { throw TLSFileError("\(certFile) holds no certificate") }
        let key = try keyPEM.map { try NIOSSLPrivateKey(bytes: Array($0.utf8), format: .pem) } ?? NIOSSLPrivateKey(file: keyFile, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = minVersion
        configuration.applicationProtocols = ["http/1.1"]
        if let clientCAFile {
            configuration.trustRoots = .file(clientCAFile)
            configuration.certificateVerification = requireClientCert ? .noHostnameVerification : .optionalVerification
        }
        return configuration
    }
}

/// `server.tls.acme`: where certificates come from (RFC 8555, HTTP-01 or TLS-ALPN-01) and where they are kept.
public struct ACMEConfig: Sendable, Equatable {
    public var directoryURL: String
    public var email: String?
    public var domains: [String]
    public var storageDir: String
    /// The plain-HTTP listener the CA checks challenges on (port 80 for Let's Encrypt).
    public var httpListen: HostPort
    /// A private CA to trust for the directory's HTTPS (Pebble's, or an internal ACME server).
    public var directoryCAFile: String?
    /// Renew this long before expiry; nil: when a third of the lifetime is left.
    public var renewBeforeSeconds: Double?
    /// How domains are proved: HTTP-01 on `http_listen` (the default), or TLS-ALPN-01 on the
    /// gateway's own TLS port (no port 80 needed).
    public var challenge: Challenge = .http01

    public enum Challenge: String, Sendable, Equatable {
        case http01 = "http-01"
        case tlsALPN01 = "tls-alpn-01"
    }
}

struct TLSFileError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ConfigReader {
    mutating func readServerTLS(_ node: Node, _ path: String) -> ServerTLSConfig? {
        let keys: Set<String> = ["cert_file", "key_file", "client_ca_file", "require_client_cert", "min_version", "reload_interval_ms", "acme"]
        guard let map = mapping(node, path, keys: keys) else { return nil }
        var acme: ACMEConfig?
        if let value = map["acme"] {
            if path != "server.tls" { issue("\(path).acme", "is only for the gateway listener (server.tls)") }
            if map["cert_file"] != nil || map["key_file"] != nil { issue("\(path).acme", "replaces cert_file and key_file: set one or the other") }
            acme = readACME(value, "\(path).acme")
            guard acme != nil else { return nil }
        }
        func file(_ key: String) -> String? {
            guard let value = map[key] else { return nil }
            guard let text = string(value, "\(path).\(key)") else { return nil }
            if !readableFile(text) { issue("\(path).\(key)", "cannot read \(text)") }
            return text
        }
        let cert = acme.map { $0.storageDir + "/cert.pem" } ?? file("cert_file")
        let key = acme.map { $0.storageDir + "/key.pem" } ?? file("key_file")
        if acme == nil, map["cert_file"] == nil { issue("\(path).cert_file", "is required") }
        if acme == nil, map["key_file"] == nil { issue("\(path).key_file", "is required") }
        guard let cert, let key else { return nil }
        var tls = ServerTLSConfig(certFile: cert, keyFile: key)
        tls.acme = acme
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

extension ConfigReader {
    mutating func readACME(_ node: Node, _ path: String) -> ACMEConfig? {
        let keys: Set<String> = ["directory_url", "email", "domains", "storage_dir", "http_listen", "directory_ca_file", "renew_before_days", "challenge"]
        guard let map = mapping(node, path, keys: keys) else { return nil }
        guard let url = map["directory_url"].flatMap({ string($0, "\(path).directory_url") }), url.hasPrefix("https://") || url.hasPrefix("http://") else {
            issue("\(path).directory_url", "is required: the CA's directory, e.g. https://acme-v02.api.letsencrypt.org/directory")
            return nil
        }
        let domains = map["domains"].flatMap { strings($0, "\(path).domains") } ?? []
        if domains.isEmpty { issue("\(path).domains", "is required: the DNS names the certificate is for") }
        guard let storage = map["storage_dir"].flatMap({ string($0, "\(path).storage_dir") }) else {
            issue("\(path).storage_dir", "is required: where the account key and the certificate are kept")
            return nil
        }
        var listen = HostPort(host: "0.0.0.0", port: 80)
        if let value = map["http_listen"], let text = string(value, "\(path).http_listen") {
            if let parsed = HostPort(text) { listen = parsed } else { issue("\(path).http_listen", "must be host:port") }
        }
        var ca: String?
        if let value = map["directory_ca_file"], let text = string(value, "\(path).directory_ca_file") {
            if !readableFile(text) { issue("\(path).directory_ca_file", "cannot read \(text)") }
            ca = text
        }
        var renewBefore: Double?
        if let value = map["renew_before_days"], let days = integer(value, "\(path).renew_before_days", min: 1) { renewBefore = Double(days) * 86_400 }
        var challenge = ACMEConfig.Challenge.http01
        if let value = map["challenge"], let text = string(value, "\(path).challenge") {
            if let parsed = ACMEConfig.Challenge(rawValue: text) { challenge = parsed } else { issue("\(path).challenge", "must be http-01 or tls-alpn-01") }
        }
        guard !domains.isEmpty else { return nil }
        var acme = ACMEConfig(
            directoryURL: url, email: map["email"].flatMap { string($0, "\(path).email") }, domains: domains, storageDir: storage,
            httpListen: listen, directoryCAFile: ca, renewBeforeSeconds: renewBefore)
        acme.challenge = challenge
        return acme
    }
}
