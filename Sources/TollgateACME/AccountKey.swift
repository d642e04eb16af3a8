import Crypto
import Foundation

/// The ACME account's key (P-256, ES256) and what RFC 8555 and RFC 7515/7638 make of it: the
/// JWK sent with `newAccount`, its thumbprint (in every key authorization), and JWS signatures
/// over each request. Kept as PEM in `storage_dir`, so a restart or a renewal is the same account.
public struct AccountKey: Sendable {
    public let key: P256.Signing.PrivateKey

    public init(_ key: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) { self.key = key }

    public init(pem: String) throws { key = try P256.Signing.PrivateKey(pemRepresentation: pem) }

    public var pem: String { key.pemRepresentation }

    /// The public key's coordinates, base64url, from its uncompressed point (0x04 ‖ X ‖ Y).
    private var coordinates: (x: String, y: String) {
        let point = key.publicKey.x963Representation
        return (Base64URL.encode(point.dropFirst().prefix(32)), Base64URL.encode(point.suffix(32)))
    }

    /// The JWK, members in lexicographic order and no whitespace: the form RFC 7638 hashes.
    public var jwk: String {
        let (x, y) = coordinates
        return #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
    }

    /// RFC 7638 thumbprint, base64url: the second half of every key authorization.
    public var thumbprint: String { Base64URL.encode(SHA256.hash(data: Data(jwk.utf8))) }

    /// The HTTP-01 key authorization for a challenge token (RFC 8555 §8.1).
    public func keyAuthorization(_ token: String) -> String { token + "." + thumbprint }

    /// A flattened JWS (RFC 8555 §6.2): `kid` once the account exists, else the JWK. `payload`
    /// nil is POST-as-GET (an empty payload).
    public func sign(url: String, nonce: String, kid: String?, payload: String?) throws -> Data {
        let identity = kid.map { #""kid":"\#(JSONText.escape($0))""# } ?? #""jwk":\#(jwk)"#
        let header = #"{"alg":"ES256",\#(identity),"nonce":"\#(JSONText.escape(nonce))","url":"\#(JSONText.escape(url))"}"#
        let protected = Base64URL.encode(Data(header.utf8))
        let body = payload.map { Base64URL.encode(Data($0.utf8)) } ?? ""
        let signature = try key.signature(for: Data((protected + "." + body).utf8))
        let jws = #"{"protected":"\#(protected)","payload":"\#(body)","signature":"\#(Base64URL.encode(signature.rawRepresentation))"}"#
        return Data(jws.utf8)
    }
}

/// base64url without padding (RFC 7515 §2).
public enum Base64URL {
    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decode(_ text: String) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }
}

/// A string as a JSON string's contents.
enum JSONText {
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
