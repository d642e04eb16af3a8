import Crypto

/// How a presented API key becomes the `KeyHash` stores keep: SHA-256, or with a pepper
/// (`auth.pepper_file`) HMAC-SHA256 under that secret, so a copy of the key table alone (a
/// backup, a read replica, a SQL injection) cannot be tested against guessed keys offline.
///
/// The pepper belongs in a secret store, not beside the database: it protects the hashes only
/// while it is kept elsewhere. Changing it makes every existing key unknown (they were hashed
/// under the old one), so set it before issuing keys, or re-issue them.
public struct KeyHasher: Sendable {
    /// The HMAC keyed once (its inner and outer pads hashed); each key hashes a copy of it, so
    /// the pepper's key schedule is not redone per request. Never mutated after init.
    private final class Keyed: @unchecked Sendable {
        let template: HMAC<SHA256>
        init(_ pepper: [UInt8]) { template = HMAC<SHA256>(key: SymmetricKey(data: pepper)) }
    }

    private let keyed: Keyed?

    /// Plain SHA-256 (no pepper).
    public static let plain = KeyHasher(pepper: nil)

    public init(pepper: [UInt8]?) {
        keyed = pepper.map(Keyed.init)
    }

    public var isPeppered: Bool { keyed != nil }

    /// The hash of a key read in place from a request head.
    public func hash(_ key: UnsafeRawBufferPointer) -> KeyHash {
        guard let keyed else { return KeyHash(key: key) }
        var mac = keyed.template
        mac.update(data: key)
        return Data32.read(mac.finalize())
    }

    public func hash(_ key: String) -> KeyHash {
        var key = key
        return key.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }
}

private enum Data32 {
    static func read(_ code: HashedAuthenticationCode<SHA256>) -> KeyHash {
        code.withUnsafeBytes { KeyHash(digest: $0) }
    }
}
