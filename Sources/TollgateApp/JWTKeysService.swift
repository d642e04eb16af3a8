import CoreMetrics
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateDataPlane

/// Re-reads `auth.jwt.keys_file` every `reload_interval_ms` and swaps in the new key set when
/// its content changed: an issuer adds its next key to the JWKS before signing with it, and
/// drops the old one after its tokens expired. A file that does not load is refused with one
/// error line, and the keys in force stay.
final class JWTKeysService: Service {
    let file: WatchedFile
    let interval: Duration
    let verifier: JWTVerifier
    let logger: Logger
    let factory: any MetricsFactory

    init(path: String, initial: String, interval: Duration, verifier: JWTVerifier, logger: Logger, factory: any MetricsFactory) {
        file = WatchedFile(path: path, applied: initial)
        self.interval = interval
        self.verifier = verifier
        self.logger = logger
        self.factory = factory
    }

    /// Reads and loads the file at start: keys that do not load stop the server.
    static func load(_ config: JWTConfig) async throws -> (text: String, verifier: JWTVerifier) {
        guard let text = SecretFile.read(config.keysFile) else {
            throw ConfigErrors(issues: [ConfigIssue(path: "auth.jwt.keys_file", message: "cannot read \(config.keysFile)")])
        }
        do {
            return (text, try await JWTVerifier.make(settings: config.settings, keysText: text))
        } catch {
            throw ConfigErrors(issues: [ConfigIssue(path: "auth.jwt.keys_file", message: "\(config.keysFile): \(error)")])
        }
    }

    func run() async throws {
        try await file.poll(every: interval, { try await self.apply($0) }, refused: { self.refused($0) })
    }

    private func apply(_ text: String) async throws {
        try await verifier.reload(keysText: text)
        count("loaded")
        logger.notice("JWT keys reloaded", metadata: ["file": "\(file.path)"])
    }

    private func refused(_ error: any Error) {
        count("refused")
        logger.error("JWT keys not reloaded: the file does not load, the old keys stay", metadata: ["file": "\(file.path)", "error": "\(error)"])
    }

    /// `tollgate_jwt_key_reloads_total{result}`: `loaded` or `refused`.
    private func count(_ result: String) {
        Counter(label: "tollgate_jwt_key_reloads_total", dimensions: [("result", result)], factory: factory).increment()
    }
}
