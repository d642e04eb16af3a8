import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization
import TollgateACME
import TollgateDataPlane
import TollgateTLS

/// `server.tls.acme`: a certificate from an ACME CA (Let's Encrypt, or Pebble in the tests) for
/// the gateway listener, obtained at start when `storage_dir` holds none, renewed when a third
/// of its life is left, through the same hand-over as a reloaded file: new handshakes get the
/// new pair, open connections keep theirs. A failed attempt changes nothing served; it is
/// logged, counted, and retried with a growing backoff.
///
/// `storage_dir` holds `account.pem` (the ACME account key, kept across restarts), `cert.pem`
/// and `key.pem` (written to a temporary name and renamed, so a reader never sees half a file).
public final class ACMEService: Service, Sendable {
    let settings: ACMEConfig
    let tlsConfig: ServerTLSConfig
    let tls: ServerTLS
    let tokens: ChallengeTokens
    /// TLS-ALPN-01's certificates, served by the gateway listener's `TLSHelloRouter`.
    public let alpn = ALPNChallenges()
    let logger: Logger
    let factory: any MetricsFactory
    private let state = Mutex<(failures: Int, lastAttempt: Double?)>((0, nil))

    init(settings: ACMEConfig, tlsConfig: ServerTLSConfig, tls: ServerTLS, tokens: ChallengeTokens, logger: Logger, factory: any MetricsFactory) {
        self.settings = settings
        self.tlsConfig = tlsConfig
        self.tls = tls
        self.tokens = tokens
        self.logger = logger
        self.factory = factory
    }

    var certPath: String { settings.storageDir + "/cert.pem" }
    var keyPath: String { settings.storageDir + "/key.pem" }
    var accountPath: String { settings.storageDir + "/account.pem" }

    /// The context the listener starts with: the stored pair when there is one for these
    /// domains, else a self-signed placeholder until the CA's certificate arrives.
    static func initialContext(_ settings: ACMEConfig, tlsConfig: ServerTLSConfig) throws -> NIOSSLContext {
        if let cert = try? String(contentsOfFile: tlsConfig.certFile, encoding: .utf8), let key = try? String(contentsOfFile: tlsConfig.keyFile, encoding: .utf8),
            CertificateFactory.inspect(pem: cert, domains: settings.domains)?.coversDomains == true, let context = try? tlsConfig.makeContext(certificatePEM: cert, keyPEM: key)
        {
            return context
        }
        let key = P256.Signing.PrivateKey()
        return try tlsConfig.makeContext(certificatePEM: try CertificateFactory.placeholder(domains: settings.domains, key: key), keyPEM: key.pemRepresentation)
    }

    /// The challenge context for `domain` while it is being proved over TLS-ALPN-01: the
    /// challenge certificate, `acme-tls/1` as the only protocol (RFC 8737 §3).
    static func alpnContext(_ challenges: ALPNChallenges, domain: String) -> NIOSSLContext? {
        guard let pair = challenges.pair(for: domain),
            let chain = try? NIOSSLCertificate.fromPEMBytes(Array(pair.certificatePEM.utf8)),
            let key = try? NIOSSLPrivateKey(bytes: Array(pair.keyPEM.utf8), format: .pem)
        else { return nil }
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.applicationProtocols = ["acme-tls/1"]
        return try? NIOSSLContext(configuration: configuration)
    }

    /// The stored certificate's validity, when it is the CA's and names every domain.
    func current() -> RenewalSchedule.Current? {
        guard let pem = try? String(contentsOfFile: certPath, encoding: .utf8),
            let (validity, covers) = CertificateFactory.inspect(pem: pem, domains: settings.domains), covers
        else { return nil }
        return validity
    }

    public func run() async throws {
        try FileManager.default.createDirectory(atPath: settings.storageDir, withIntermediateDirectories: true)
        let schedule = RenewalSchedule(renewBefore: settings.renewBeforeSeconds)
        if let current = current() { expiry(current.notAfter) }
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let now = Date().timeIntervalSince1970
                let (failures, last) = self.state.withLock { ($0.failures, $0.lastAttempt) }
                let at = schedule.nextAttempt(current: self.current(), failures: failures, lastAttempt: last, now: now)
                if at > now {
                    // Looked at again at least hourly: the files may change under it.
                    guard (try? await Task.sleep(for: .seconds(min(at - now, 3_600)))) != nil else { return }
                    continue
                }
                await self.renewNow()
            }
        }
    }

    /// One attempt now: order, prove, finalize, store, hand over. Returns whether it succeeded.
    @discardableResult
    public func renewNow() async -> Bool {
        let now = Date().timeIntervalSince1970
        state.withLock { $0.lastAttempt = now }
        do {
            let http = try makeHTTPClient()
            defer { Task { try? await http.shutdown() } }
            let account = try loadOrCreateAccount()
            let key = P256.Signing.PrivateKey()
            let client = ACMEClient(directoryURL: settings.directoryURL, http: http, account: account, email: settings.email, logger: logger)
            let chain = try await client.obtain(
                domains: settings.domains, csrDER: try CertificateFactory.csr(domains: settings.domains, key: key),
                method: settings.challenge == .tlsALPN01 ? .tlsALPN(alpn) : .http(tokens))
            guard let (validity, covers) = CertificateFactory.inspect(pem: chain, domains: settings.domains), covers else {
                throw TLSFileError("the CA's certificate does not name every domain in server.tls.acme.domains")
            }
            let context = try tlsConfig.makeContext(certificatePEM: chain, keyPEM: key.pemRepresentation)
            try Self.write(key.pemRepresentation, to: keyPath, mode: 0o600)
            try Self.write(chain, to: certPath, mode: 0o644)
            tls.replace(context)
            state.withLock { $0.failures = 0 }
            Counter(label: "tollgate_acme_orders_total", dimensions: [("result", "issued")], factory: factory).increment()
            expiry(validity.notAfter)
            logger.notice("ACME certificate issued and in use", metadata: [
                "domains": "\(settings.domains.joined(separator: ","))", "not_after": "\(Date(timeIntervalSince1970: validity.notAfter))",
            ])
            return true
        } catch {
            let failures = state.withLock { state in
                state.failures += 1
                return state.failures
            }
            Counter(label: "tollgate_acme_orders_total", dimensions: [("result", "failed")], factory: factory).increment()
            logger.error("ACME certificate not obtained; the listener keeps the certificate it has", metadata: [
                "directory": "\(settings.directoryURL)", "failures_in_a_row": "\(failures)", "error": "\(error)",
            ])
            return false
        }
    }

    private func expiry(_ notAfter: Double) {
        Gauge(label: "tollgate_acme_certificate_not_after_seconds", factory: factory).record(notAfter)
    }

    private func makeHTTPClient() throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        if let ca = settings.directoryCAFile {
            configuration.tlsConfiguration = try .client(trusting: ca)
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private func loadOrCreateAccount() throws -> AccountKey {
        if let pem = try? String(contentsOfFile: accountPath, encoding: .utf8) { return try AccountKey(pem: pem) }
        let account = AccountKey()
        try Self.write(account.pem, to: accountPath, mode: 0o600)
        return account
    }

    /// Written beside the target and renamed over it: a reader sees the old file or the new one.
    static func write(_ text: String, to path: String, mode: Int) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw TLSFileError("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw TLSFileError("cannot rename \(temporary) to \(path): errno \(errno)") }
    }
}
