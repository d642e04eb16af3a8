import Foundation
import JWTKit
import Synchronization
import TollgateCore
import TollgateJSONRPC

/// `auth.jwt`: what a token must be to be accepted beside a key.
public struct JWTSettings: Sendable, Equatable {
    /// Signature algorithms accepted (`alg` of the token's header); others are refused unread.
    public var algorithms: Set<String> = ["RS256", "ES256"]
    public var issuer: String?
    public var audience: String?
    /// Every request must carry a token (else per plan, `require_jwt`).
    public var require = false
    /// Clock skew allowed on `exp` and `nbf`.
    public var leewaySeconds = 30

    public init() {}
}

/// What a verified token allows. It narrows the key, never widens it: each list, when present,
/// must also pass (Infura's JWT allowlists).
struct TokenGrant: Sendable {
    var methods: MethodMatcher?
    var addresses: Set<String>?
    var origins: Set<String>?
    /// Unix seconds after which the grant is not used (the token's `exp`, or sooner for the cache).
    var usableUntil: Int64
}

/// The claims Tollgate reads. `exp` is required: a token that never expires is refused.
struct TollgateClaims: JWTPayload {
    var exp: ExpirationClaim
    var nbf: NotBeforeClaim?
    var iss: IssuerClaim?
    var aud: AudienceClaim?
    var methods: [String]?
    var addresses: [String]?
    var origins: [String]?

    /// Time claims are checked afterwards, with the configured leeway.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies JWTs with `vapor/jwt-kit` against the keys of `auth.jwt.keys_file` (a JWKS, or one
/// PEM public key). The key set is swapped whole when the file changes (several keys at once
/// let issuers rotate). Verification happens off the event loop, once per token: the grant is
/// then kept by the loop (`LoopState`) until the token expires or for a minute at most.
public final class JWTVerifier: Sendable {
    public let settings: JWTSettings
    private let keys: Mutex<JWTKeyCollection>
    /// How long a loop keeps a verified grant: a key removed from the file stops being
    /// honoured within this.
    static let grantLifetime: Int64 = 60

    init(settings: JWTSettings, keys: JWTKeyCollection) {
        self.settings = settings
        self.keys = Mutex(keys)
    }

    /// A verifier for the keys in `keysText` (a JWKS or a PEM public key).
    public static func make(settings: JWTSettings, keysText: String) async throws -> JWTVerifier {
        JWTVerifier(settings: settings, keys: try await keys(from: keysText))
    }

    /// Swaps in the keys of `keysText`; on an error the keys in force stay.
    public func reload(keysText: String) async throws {
        let loaded = try await Self.keys(from: keysText)
        keys.withLock { $0 = loaded }
    }

    public struct LoadError: Error, CustomStringConvertible {
        public var description: String
    }

    /// A JWKS (`{"keys": [...]}`) or one PEM public key (RSA → RS256, P-256 → ES256).
    static func keys(from text: String) async throws -> JWTKeyCollection {
        let collection = JWTKeyCollection()
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("{") {
            do { try await collection.add(jwksJSON: trimmed) } catch { throw LoadError(description: "not a usable JWKS: \(error)") }
            return collection
        }
        if let rsa = try? Insecure.RSA.PublicKey(pem: trimmed) {
            await collection.add(rsa: rsa, digestAlgorithm: .sha256)
        } else if let ec = try? ES256PublicKey(pem: trimmed) {
            await collection.add(ecdsa: ec)
        } else {
            throw LoadError(description: "neither a JWKS nor a PEM RSA or P-256 public key")
        }
        return collection
    }

    /// Why a token is refused (401, -32001).
    struct Refusal: Error, Equatable {
        var message: String
    }

    func verify(_ token: String, nowSeconds: Int64) async -> Result<TokenGrant, Refusal> {
        guard let alg = Self.algorithm(of: token) else { return .failure(Refusal(message: "JWT malformed")) }
        guard settings.algorithms.contains(alg) else { return .failure(Refusal(message: "JWT algorithm \(alg) not accepted")) }
        let collection = keys.withLock { $0 }
        let claims: TollgateClaims
        do {
            claims = try await collection.verify(token, as: TollgateClaims.self)
        } catch {
            return .failure(Refusal(message: "JWT not valid: \(Self.reason(error))"))
        }
        let leeway = Int64(settings.leewaySeconds)
        let expires = Int64(claims.exp.value.timeIntervalSince1970)
        guard expires + leeway > nowSeconds else { return .failure(Refusal(message: "JWT expired")) }
        if let nbf = claims.nbf, Int64(nbf.value.timeIntervalSince1970) - leeway > nowSeconds {
            return .failure(Refusal(message: "JWT not valid yet (nbf)"))
        }
        if let issuer = settings.issuer, claims.iss?.value != issuer { return .failure(Refusal(message: "JWT issuer not accepted")) }
        if let audience = settings.audience, !(claims.aud?.value.contains(audience) ?? false) {
            return .failure(Refusal(message: "JWT audience does not include \(audience)"))
        }
        var grant = TokenGrant(usableUntil: min(expires + leeway, nowSeconds + Self.grantLifetime))
        if let methods = claims.methods { grant.methods = MethodMatcher(methods) }
        if let addresses = claims.addresses {
            var set = Set<String>()
            for text in addresses {
                guard let address = CallAddresses.normalized(text) else { return .failure(Refusal(message: "JWT 'addresses' holds \(text), not an address")) }
                set.insert(address)
            }
            grant.addresses = set
        }
        if let origins = claims.origins { grant.origins = Set(origins.map { $0.lowercased() }) }
        return .success(grant)
    }

    /// The `alg` of the token's header (read before any key is tried).
    static func algorithm(of token: String) -> String? {
        guard let dot = token.firstIndex(of: "."), token.filter({ $0 == "." }).count == 2 else { return nil }
        var text = String(token[..<dot]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        guard let data = Data(base64Encoded: text), let header = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return header["alg"] as? String
    }

    /// jwt-kit's error, short enough for a client (no key material is in it).
    static func reason(_ error: any Error) -> String {
        if let error = error as? JWTError { return error.reason ?? "\(error.errorType)" }
        return "\(error)"
    }
}
