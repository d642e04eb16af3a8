/// What a loop's key cache is keyed by: 128 bits of a keyed hash of the presented token.
///
/// The store knows keys by their SHA-256 (or HMAC under the pepper), which costs a few hundred
/// nanoseconds, more than the rest of authentication. A known key's repeat requests are looked
/// up by this fingerprint instead, and the SHA-256 is taken only when the loop has no answer for
/// it. No key is kept: SipHash (the standard library's `Hasher`) under a secret drawn at start,
/// twice, with different tags. Nobody outside the process sees a fingerprint, so passing as a
/// cached key means guessing 128 bits online.
struct TokenFingerprint: Hashable {
    let high: UInt64
    let low: UInt64

    /// Drawn once per process; `Hasher`'s own seed can be made fixed by an environment variable.
    private static let secret: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    init(_ token: UnsafeRawBufferPointer) {
        high = Self.hash(token, tag: 0x9E37_79B9_7F4A_7C15)
        low = Self.hash(token, tag: 0xC2B2_AE3D_27D4_EB4F)
    }

    private static func hash(_ token: UnsafeRawBufferPointer, tag: UInt64) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(secret.0 ^ tag)
        hasher.combine(secret.1)
        hasher.combine(bytes: token)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }
}
