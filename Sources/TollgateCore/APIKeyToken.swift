import Crypto

/// The SHA-256 of an API key: what stores keep and caches are keyed by.
///
/// Held as four words rather than a hex string so that hashing and comparing it on every
/// request allocates nothing.
public struct KeyHash: Hashable, Sendable, CustomStringConvertible {
    public var words: (UInt64, UInt64, UInt64, UInt64)

    public init(digest bytes: some Sequence<UInt8>) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var index = 0
        for byte in bytes {
            switch index / 8 {
            case 0: words.0 = words.0 << 8 | UInt64(byte)
            case 1: words.1 = words.1 << 8 | UInt64(byte)
            case 2: words.2 = words.2 << 8 | UInt64(byte)
            default: words.3 = words.3 << 8 | UInt64(byte)
            }
            index += 1
        }
        precondition(index == 32, "a SHA-256 digest is 32 bytes")
        self.words = words
    }

    /// The hash of a key read in place from a request head.
    public init(key: UnsafeRawBufferPointer) {
        var hasher = SHA256()
        hasher.update(bufferPointer: key)
        // Read the digest in place: iterating it as a Sequence allocates.
        self = hasher.finalize().withUnsafeBytes { KeyHash(digest: $0) }
    }

    public init(key: some Sequence<UInt8>) {
        self = key.withContiguousStorageIfAvailable { KeyHash(key: UnsafeRawBufferPointer($0)) }
            ?? Array(key).withUnsafeBytes { KeyHash(key: $0) }
    }

    public init(key: String) { self.init(key: Array(key.utf8)) }

    public init?(hex: String) {
        let chars = Array(hex.utf8)
        guard chars.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let value = UInt8(String(decoding: chars[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
        }
        self.init(digest: bytes)
    }

    public var hex: String {
        [words.0, words.1, words.2, words.3].map { word in
            let text = String(word, radix: 16)
            return String(repeating: "0", count: 16 - text.count) + text
        }.joined()
    }

    public static func == (lhs: KeyHash, rhs: KeyHash) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }

    /// Compares in time independent of where the hashes differ (for secrets' hashes).
    public func constantTimeEquals(_ other: KeyHash) -> Bool {
        ((words.0 ^ other.words.0) | (words.1 ^ other.words.1) | (words.2 ^ other.words.2) | (words.3 ^ other.words.3)) == 0
    }

    /// Never print the hash in full: it is as good as the key for an offline lookup table.
    public var description: String { String(hex.prefix(8)) + "…" }
}

extension KeyHash: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = KeyHash(hex: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a SHA-256 hex digest"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }
}

/// Makes and recognises API keys: `tg_` followed by 32 random bytes in base62 (43 characters).
public enum APIKeyToken {
    public static let scheme = "tg_"
    public static let bodyLength = 43
    public static let length = scheme.utf8.count + bodyLength
    /// Characters of the key that identify it in listings and logs.
    public static let prefixLength = 11

    /// A new random key. Uses the system's CSPRNG.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = generator.next() }
        var body = Base62.encode(bytes)
        while body.count < bodyLength { body.insert("0", at: body.startIndex) }
        return scheme + body
    }

    /// The non-secret identifier of a key.
    public static func prefix(of key: String) -> String { String(key.prefix(prefixLength)) }

    /// True when `bytes` has the shape of a Tollgate key. Checked before any lookup so that junk
    /// never reaches the cache or the store.
    public static func isWellFormed(_ bytes: some Collection<UInt8>) -> Bool {
        if let raw = bytes as? UnsafeRawBufferPointer { return isWellFormed(raw: raw) }
        return isWellFormed(raw: Array(bytes))
    }

    /// The same on raw bytes (the request head's): concrete, so a caller in another module does
    /// not walk the key through an unspecialized generic, byte by byte.
    public static func isWellFormed(_ bytes: UnsafeRawBufferPointer) -> Bool { isWellFormed(raw: bytes) }

    /// The prefix, then one branch-free test per digit folded into one flag: every request's
    /// key passes here (a `switch` on the position per byte was ~1 % of the data path's user
    /// time in `bench/profile`).
    private static func isWellFormed<Bytes: Collection<UInt8>>(raw bytes: Bytes) -> Bool {
        guard bytes.count == length else { return false }
        var iterator = bytes.makeIterator()
        guard iterator.next() == UInt8(ascii: "t"), iterator.next() == UInt8(ascii: "g"), iterator.next() == UInt8(ascii: "_") else {
            return false
        }
        var invalid: UInt8 = 0
        while let byte = iterator.next() { invalid |= Base62.isDigit(byte) ? 0 : 1 }
        return invalid == 0
    }
}

enum Base62 {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool {
        // 0-9, A-Z, a-z: three unsigned range checks, no early exit.
        (byte &- 48 < 10) || (byte &- 65 < 26) || (byte &- 97 < 26)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var number = bytes
        var digits: [UInt8] = []
        while number.contains(where: { $0 != 0 }) {
            var remainder = 0
            for index in number.indices {
                let value = remainder * 256 + Int(number[index])
                number[index] = UInt8(value / 62)
                remainder = value % 62
            }
            digits.append(alphabet[remainder])
        }
        return String(decoding: digits.reversed(), as: UTF8.self)
    }
}

