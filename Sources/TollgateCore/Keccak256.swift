/// Keccak-256 as Ethereum uses it (the original Keccak padding, not SHA3-256's). swift-crypto
/// has SHA-3 but not this; the gateway needs it only to name a transaction by its hash.
public enum Keccak256 {
    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]
    private static let rotations: [UInt64] = [
        0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
    ]
    private static let rate = 136

    public static func hash(_ input: some Collection<UInt8>) -> [UInt8] {
        var state = [UInt64](repeating: 0, count: 25)
        var block = [UInt8](repeating: 0, count: rate)
        var filled = 0
        for byte in input {
            block[filled] = byte
            filled += 1
            if filled == rate {
                absorb(block, into: &state)
                filled = 0
            }
        }
        for index in filled..<rate { block[index] = 0 }
        block[filled] ^= 0x01
        block[rate - 1] ^= 0x80
        absorb(block, into: &state)
        var output: [UInt8] = []
        output.reserveCapacity(32)
        for lane in state.prefix(4) {
            for shift in stride(from: 0, to: 64, by: 8) { output.append(UInt8(truncatingIfNeeded: lane >> UInt64(shift))) }
        }
        return output
    }

    private static func absorb(_ block: [UInt8], into state: inout [UInt64]) {
        for lane in 0..<(rate / 8) {
            var value: UInt64 = 0
            for byte in 0..<8 { value |= UInt64(block[lane * 8 + byte]) << UInt64(8 * byte) }
            state[lane] ^= value
        }
        permute(&state)
    }

    private static func rotate(_ value: UInt64, _ by: UInt64) -> UInt64 {
        by == 0 ? value : (value << by) | (value >> (64 - by))
    }

    private static func permute(_ a: inout [UInt64]) {
        var c = [UInt64](repeating: 0, count: 5)
        var b = [UInt64](repeating: 0, count: 25)
        for round in 0..<24 {
            for x in 0..<5 { c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20] }
            for x in 0..<5 {
                let d = c[(x + 4) % 5] ^ rotate(c[(x + 1) % 5], 1)
                for y in stride(from: 0, to: 25, by: 5) { a[y + x] ^= d }
            }
            for x in 0..<5 {
                for y in 0..<5 {
                    b[y + 5 * ((2 * x + 3 * y) % 5)] = rotate(a[x + 5 * y], rotations[x + 5 * y])
                }
            }
            for y in stride(from: 0, to: 25, by: 5) {
                for x in 0..<5 { a[y + x] = b[y + x] ^ (~b[y + (x + 1) % 5] & b[y + (x + 2) % 5]) }
            }
            a[0] ^= roundConstants[round]
        }
    }
}

/// A signed transaction's hash, from the bytes a client passed to `eth_sendRawTransaction`.
public enum TransactionHash {
    /// `0x`-prefixed lowercase hex, or nil when the bytes are not a transaction we can name.
    /// Typed and legacy transactions hash as sent; a blob transaction in its network form
    /// (`0x03 || rlp([payload, blobs, commitments, proofs])`) hashes its payload only.
    public static func of(rawHex: String) -> String? {
        guard rawHex.hasPrefix("0x"), rawHex.utf8.count % 2 == 0, rawHex.utf8.count > 4 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(rawHex.utf8.count / 2)
        var iterator = rawHex.utf8.dropFirst(2).makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = nibble(high), let l = nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        var hashed = bytes
        if bytes[0] == 0x03, let payload = firstListItem(bytes, from: 1), bytes.count > 1, bytes[1] >= 0xC0 {
            // Network form wraps [payload, blobs, …]; a plain typed blob tx starts its payload directly.
            if let inner = payload.first, inner >= 0xC0 { hashed = [0x03] + payload }
        }
        return "0x" + Keccak256.hash(hashed).map { String($0, radix: 16).leftPadded }.joined()
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }

    /// The complete encoding (header included) of the first item of the RLP list at `from`.
    private static func firstListItem(_ bytes: [UInt8], from: Int) -> [UInt8]? {
        guard let (listStart, _) = header(bytes, at: from), listStart < bytes.count,
            let (itemStart, itemLength) = header(bytes, at: listStart)
        else { return nil }
        let end = itemStart + itemLength
        guard end <= bytes.count else { return nil }
        return Array(bytes[listStart..<end])
    }

    /// (payload start, payload length) of the RLP item at `at`.
    private static func header(_ bytes: [UInt8], at: Int) -> (Int, Int)? {
        guard at < bytes.count else { return nil }
        let first = bytes[at]
        switch first {
        case 0x00...0x7F: return (at, 1)
        case 0x80...0xB7: return (at + 1, Int(first - 0x80))
        case 0xC0...0xF7: return (at + 1, Int(first - 0xC0))
        default:
            let lengthOfLength = Int(first >= 0xF8 ? first - 0xF7 : first - 0xB7)
            guard lengthOfLength <= 4, at + lengthOfLength < bytes.count else { return nil }
            var length = 0
            for index in 1...lengthOfLength { length = length << 8 | Int(bytes[at + index]) }
            return (at + 1 + lengthOfLength, length)
        }
    }
}

extension String {
    fileprivate var leftPadded: String { count == 1 ? "0" + self : self }
}
