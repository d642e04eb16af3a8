/// Where a signed transaction (the hex an `eth_sendRawTransaction` carries) is going: what a
/// key's contract allowlist is checked against before the node sees it.
///
/// Every type a node accepts today is read: legacy (RLP list, `to` fourth), EIP-2930 (`0x01`),
/// EIP-1559 (`0x02`), EIP-4844 (`0x03`, also in its network forms with blobs, commitments and
/// proofs, before and after EIP-7594) and EIP-7702 (`0x04`). The signature is not checked (the node does that);
/// only the framing, strictly, so that a transaction Tollgate cannot read is refused rather
/// than let through unread.
public enum SignedTransaction {
    public enum Recipient: Equatable, Sendable {
        /// The 20-byte `to`, as `0x` and 40 lowercase hex digits.
        case address(String)
        /// No `to`: the transaction creates a contract.
        case creation
    }

    public enum DecodeError: Error, Equatable, Sendable, CustomStringConvertible {
        case notHex
        case empty
        case unknownType(UInt8)
        case malformed(RLP.DecodeError)
        case wrongFieldCount(Int)
        case badRecipient

        public var description: String {
            switch self {
            case .notHex: "not a 0x-prefixed hex string"
            case .empty: "empty transaction"
            case .unknownType(let type): "unknown transaction type 0x\(String(type, radix: 16))"
            case .malformed(let error): "malformed RLP (\(error))"
            case .wrongFieldCount(let count): "unexpected field count \(count)"
            case .badRecipient: "recipient is not 20 bytes"
            }
        }
    }

    /// The recipient of the transaction in `hex` (with its `0x`).
    public static func recipient(hex: String) -> Result<Recipient, DecodeError> {
        guard let bytes = decodeHex(hex) else { return .failure(.notHex) }
        return bytes.withUnsafeBytes { recipient(raw: $0) }
    }

    /// The recipient of the transaction in its binary form.
    public static func recipient(raw bytes: UnsafeRawBufferPointer) -> Result<Recipient, DecodeError> {
        guard let first = bytes.first else { return .failure(.empty) }
        do throws(RLP.DecodeError) {
            // A legacy transaction is an RLP list (first byte 0xC0 or more); a typed one is a
            // type byte below 0x80 and then its payload.
            if first >= 0xC0 {
                let fields = try RLP.list(in: bytes, spanning: 0..<bytes.count)
                return recipient(fields, index: 3, count: [9], bytes: bytes)
            }
            let payload = 1..<bytes.count
            switch first {
            case 0x01:
                return recipient(try RLP.list(in: bytes, spanning: payload), index: 4, count: [11], bytes: bytes)
            case 0x02:
                return recipient(try RLP.list(in: bytes, spanning: payload), index: 5, count: [12], bytes: bytes)
            case 0x03:
                var fields = try RLP.list(in: bytes, spanning: payload)
                // The network form wraps the transaction: [tx, blobs, commitments, proofs]
                // (EIP-4844), or [tx, wrapper version, blobs, commitments, cell proofs] (EIP-7594).
                if fields.count == 4 || fields.count == 5, case .list(let inner) = fields[0] {
                    fields = try RLP.items(in: bytes, of: inner)
                }
                return recipient(fields, index: 5, count: [14], bytes: bytes, mayCreate: false)
            case 0x04:
                return recipient(try RLP.list(in: bytes, spanning: payload), index: 5, count: [13], bytes: bytes, mayCreate: false)
            default:
                return .failure(.unknownType(first))
            }
        } catch {
            return .failure(.malformed(error))
        }
    }

    private static func recipient(
        _ fields: [RLP.Item], index: Int, count: Set<Int>, bytes: UnsafeRawBufferPointer, mayCreate: Bool = true
    ) -> Result<Recipient, DecodeError> {
        guard count.contains(fields.count) else { return .failure(.wrongFieldCount(fields.count)) }
        guard case .bytes(let to) = fields[index] else { return .failure(.badRecipient) }
        if to.isEmpty { return mayCreate ? .success(.creation) : .failure(.badRecipient) }
        guard to.count == 20 else { return .failure(.badRecipient) }
        return .success(.address(hexString(bytes, to)))
    }

    static func hexString(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        text.reserveCapacity(2 + range.count * 2)
        for index in range {
            text.append(digits[Int(bytes[index] >> 4)])
            text.append(digits[Int(bytes[index] & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    static func decodeHex(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") || utf8[1] == UInt8(ascii: "X"),
            utf8.count % 2 == 0
        else { return nil }
        return HexBytes.decode(utf8.dropFirst(2))
    }
}
