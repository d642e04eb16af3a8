/// Just enough of Ethereum's RLP to find fields in a signed transaction: items are located as
/// byte ranges of the input, nothing is copied. Strict, as a decoder in front of policy must
/// be: non-canonical lengths, lengths past the end and trailing bytes are errors.
public enum RLP {
    public enum Item: Equatable, Sendable {
        /// A byte string's payload.
        case bytes(Range<Int>)
        /// A list's payload (its items, encoded back to back).
        case list(Range<Int>)
    }

    public enum DecodeError: Error, Equatable, Sendable {
        case truncated
        case nonCanonical
        case trailingBytes
        case notAList
    }

    /// The item that starts at `offset`, and where the next one starts.
    public static func item(in bytes: UnsafeRawBufferPointer, at offset: Int, end: Int) throws(DecodeError) -> (Item, next: Int) {
        guard offset < end else { throw .truncated }
        let prefix = Int(bytes[offset])
        switch prefix {
        case 0x00...0x7F:
            return (.bytes(offset..<offset + 1), offset + 1)
        case 0x80...0xB7:
            let length = prefix - 0x80
            let start = offset + 1
            guard start + length <= end else { throw .truncated }
            // A single byte below 0x80 must be written as itself.
            if length == 1, bytes[start] < 0x80 { throw .nonCanonical }
            return (.bytes(start..<start + length), start + length)
        case 0xB8...0xBF:
            let (start, length) = try longLength(bytes, at: offset, lengthOfLength: prefix - 0xB7, end: end)
            return (.bytes(start..<start + length), start + length)
        case 0xC0...0xF7:
            let length = prefix - 0xC0
            let start = offset + 1
            guard start + length <= end else { throw .truncated }
            return (.list(start..<start + length), start + length)
        default:
            let (start, length) = try longLength(bytes, at: offset, lengthOfLength: prefix - 0xF7, end: end)
            return (.list(start..<start + length), start + length)
        }
    }

    /// The items of a list's payload.
    public static func items(in bytes: UnsafeRawBufferPointer, of payload: Range<Int>) throws(DecodeError) -> [Item] {
        var items: [Item] = []
        var offset = payload.lowerBound
        while offset < payload.upperBound {
            let (item, next) = try item(in: bytes, at: offset, end: payload.upperBound)
            items.append(item)
            offset = next
        }
        return items
    }

    /// The list that makes up all of `range`, as its items.
    public static func list(in bytes: UnsafeRawBufferPointer, spanning range: Range<Int>) throws(DecodeError) -> [Item] {
        let (item, next) = try item(in: bytes, at: range.lowerBound, end: range.upperBound)
        guard next == range.upperBound else { throw .trailingBytes }
        guard case .list(let payload) = item else { throw .notAList }
        return try items(in: bytes, of: payload)
    }

    private static func longLength(
        _ bytes: UnsafeRawBufferPointer, at offset: Int, lengthOfLength: Int, end: Int
    ) throws(DecodeError) -> (start: Int, length: Int) {
        let start = offset + 1 + lengthOfLength
        guard start <= end, lengthOfLength <= 4 else { throw .truncated }
        // No leading zero byte in the length, and a long form only for 56 bytes or more.
        guard bytes[offset + 1] != 0 else { throw .nonCanonical }
        var length = 0
        for index in offset + 1..<start { length = length << 8 | Int(bytes[index]) }
        guard length >= 56 else { throw .nonCanonical }
        guard length <= end - start else { throw .truncated }
        return (start, length)
    }
}
