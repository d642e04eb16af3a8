import TollgateCore
import TollgateDataPlane
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
///   jwt:                    # tokens beside keys (Authorization: Bearer <jwt>, key in the path)
///     keys_file: /etc/tollgate/jwks.json      # a JWKS, or one PEM public key; re-read on change
///     algorithms: [RS256, ES256]
///     issuer: https://auth.example
///     audience: tollgate
///     require: false        # true: every request needs one (per plan: require_jwt)
///     leeway_ms: 30000
/// ```
public struct AuthConfig: Sendable, Equatable {
    /// nil: off.
    public var failedAuth: FailedAuthLimiter.Settings? = FailedAuthLimiter.Settings()
    /// Where the pepper came from (for messages; the secret itself is never printed).
    public var pepperFile: String?
    /// The pepper's bytes (the file's content without trailing whitespace); nil: plain SHA-256.
    var pepper: [UInt8]?

    public var keyHasher: KeyHasher { KeyHasher(pepper: pepper) }
    /// `auth.jwt`; nil: tokens are not read.
    public var jwt: JWTConfig?

    public init() {}

    /// A pepper shorter than this is refused: it would be guessable.
    static let minimumPepperBytes = 16
}

extension ConfigReader {
    mutating func readAuth(_ node: Node) -> AuthConfig {
        var auth = AuthConfig()
        guard let map = mapping(node, "auth", keys: ["failed_auth", "pepper_file", "jwt"]) else { return auth }
        if let value = map["jwt"] { auth.jwt = readJWT(value) }
        if let value = map["pepper_file"], let path = string(value, "auth.pepper_file") {
            auth.pepperFile = path
            if let text = SecretFile.read(path) {
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

/// `auth.jwt`: where the verification keys are, and what a token must say.
public struct JWTConfig: Sendable, Equatable {
    public var keysFile: String
    public var settings = JWTSettings()
    public var reloadIntervalMillis = 5_000
}

extension ConfigReader {
    mutating func readJWT(_ node: Node) -> JWTConfig? {
        let keys: Set<String> = ["keys_file", "algorithms", "issuer", "audience", "require", "leeway_ms", "reload_interval_ms"]
        guard let map = mapping(node, "auth.jwt", keys: keys) else { return nil }
        guard let fileNode = map["keys_file"] else {
            issue("auth.jwt.keys_file", "is required (a JWKS or a PEM public key)")
            return nil
        }
        guard let file = string(fileNode, "auth.jwt.keys_file") else { return nil }
        if !readableFile(file) { issue("auth.jwt.keys_file", "cannot read \(file)") }
        var config = JWTConfig(keysFile: file)
        if let v = map["algorithms"], let list = strings(v, "auth.jwt.algorithms") {
            let supported: Set<String> = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
            for alg in list where !supported.contains(alg) {
                issue("auth.jwt.algorithms", "\(alg) is not an asymmetric JWS algorithm Tollgate verifies (\(supported.sorted().joined(separator: ", ")))")
            }
            if list.isEmpty { issue("auth.jwt.algorithms", "needs at least one algorithm") }
            config.settings.algorithms = Set(list)
        }
        if let v = map["issuer"] { config.settings.issuer = string(v, "auth.jwt.issuer") }
        if let v = map["audience"] { config.settings.audience = string(v, "auth.jwt.audience") }
        if let v = map["require"], let flag = boolean(v, "auth.jwt.require") { config.settings.require = flag }
        if let v = map["leeway_ms"], let ms = integer(v, "auth.jwt.leeway_ms", min: 0) { config.settings.leewaySeconds = ms / 1000 }
        if let v = map["reload_interval_ms"], let ms = integer(v, "auth.jwt.reload_interval_ms", min: 100) { config.reloadIntervalMillis = ms }
        return config
    }
}
