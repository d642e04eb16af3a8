import TollgateCore
import Yams

/// The `auth:` section: how authentication is defended.
///
/// ```yaml
/// auth:
///   failed_auth:            # brute-force protection, on by default; `failed_auth: off` disables it
///     max_failures: 100     # unknown or malformed keys from one client address…
///     window_ms: 60000      # …within this window…
///     block_ms: 300000      # …and it gets 429 for this long, without reaching the key store
///   pepper_file: /run/secrets/tollgate-pepper   # keys hashed with HMAC-SHA256 under this secret
/// ```
public struct AuthConfig: Sendable, Equatable {
    /// nil: off.
    public var failedAuth: FailedAuthLimiter.Settings? = FailedAuthLimiter.Settings()
    /// Where the pepper came from (for messages; the secret itself is never printed).
    public var pepperFile: String?
    /// The pepper's bytes (the file's content without trailing whitespace); nil: plain SHA-256.
    var pepper: [UInt8]?

    public var keyHasher: KeyHasher { KeyHasher(pepper: pepper) }

    public init() {}

    /// A pepper shorter than this is refused: it would be guessable.
    static let minimumPepperBytes = 16
}

extension ConfigReader {
    mutating func readAuth(_ node: Node) -> AuthConfig {
        var auth = AuthConfig()
        guard let map = mapping(node, "auth", keys: ["failed_auth", "pepper_file"]) else { return auth }
        if let value = map["pepper_file"], let path = string(value, "auth.pepper_file") {
            auth.pepperFile = path
            if let text = ConfigLoader.readFile(path) {
                var bytes = Array(text.utf8)
                while let last = bytes.last, last == 0x0A || last == 0x0D || last == 0x20 || last == 0x09 { bytes.removeLast() }
                if bytes.count < AuthConfig.minimumPepperBytes {
                    issue("auth.pepper_file", "\(path) holds \(bytes.count) bytes; a pepper needs at least \(AuthConfig.minimumPepperBytes) (e.g. openssl rand -base64 32)")
                } else {
                    auth.pepper = bytes
                }
            } else {
                issue("auth.pepper_file", "cannot read \(path)")
            }
        }
        if let value = map["failed_auth"] {
            if case .scalar(let scalar) = value, ["off", "false"].contains(scalar.string) {
                auth.failedAuth = nil
            } else if let fields = mapping(value, "auth.failed_auth", keys: ["max_failures", "window_ms", "block_ms", "max_tracked"]) {
                var settings = FailedAuthLimiter.Settings()
                if let v = fields["max_failures"], let n = integer(v, "auth.failed_auth.max_failures", min: 1) { settings.maxFailures = n }
                if let v = fields["window_ms"], let ms = integer(v, "auth.failed_auth.window_ms", min: 1) { settings.window = Int64(ms) * 1_000_000 }
                if let v = fields["block_ms"], let ms = integer(v, "auth.failed_auth.block_ms", min: 1) { settings.block = Int64(ms) * 1_000_000 }
                if let v = fields["max_tracked"], let n = integer(v, "auth.failed_auth.max_tracked", min: 1) { settings.capacity = n }
                auth.failedAuth = settings
            }
        }
        return auth
    }
}
