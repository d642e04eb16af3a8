import Crypto
import Foundation
import TollgateCore
import TollgateJSONRPC

/// The admin API's bearer tokens (`admin.tokens_file`): one per line, `NAME ROLE SHA256HEX`
/// (`# comments` and blank lines ignored), where ROLE is `read` or `write` and the hash is the
/// token's SHA-256 (`printf %s "$TOKEN" | sha256sum`). Only hashes are on disk; a presented
/// token is hashed and compared with every entry in constant time.
public struct AdminTokens: Sendable {
    public enum Role: String, Sendable {
        case read, write
    }

    public struct Entry: Sendable {
        public var name: String
        public var role: Role
        var hash: [UInt8]
    }

    public private(set) var entries: [Entry] = []

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public init(text: String) throws {
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count == 3, let role = Role(rawValue: String(fields[1])), let hash = Self.hex(fields[2]), hash.count == 32 else {
                throw ParseError(description: "line \(number + 1): expected NAME read|write SHA256HEX")
            }
            entries.append(Entry(name: String(fields[0]), role: role, hash: hash))
        }
    }

    /// The entry whose hash the token has, if any.
    public func authenticate(_ token: some StringProtocol) -> Entry? {
        let digest = Array(SHA256.hash(data: Array(token.utf8)))
        var found: Entry?
        // Every entry is compared, whatever matched: the time says nothing about which.
        for entry in entries where Self.constantTimeEqual(entry.hash, digest) { found = entry }
        return found
    }

    /// The token of `Bearer TOKEN`, or the password of `Basic base64(USER:TOKEN)` (how a browser
    /// sends it for the status page).
    static func token(fromAuthorization header: String) -> String? {
        if header.hasPrefix("Bearer ") { return String(header.dropFirst(7)) }
        guard header.hasPrefix("Basic "), let decoded = Data(base64Encoded: String(header.dropFirst(6))),
            let pair = String(data: decoded, encoding: .utf8), let colon = pair.firstIndex(of: ":")
        else { return nil }
        return String(pair[pair.index(after: colon)...])
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func hex(_ text: some StringProtocol) -> [UInt8]? { HexBytes.decode(Array(text.utf8)) }
}
