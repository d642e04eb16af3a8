import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides whether a node's answer means "this node is broken or behind" (counts against its
/// circuit and may be retried elsewhere) or is a good answer — including ordinary client errors
/// such as a reverted call or invalid params, which another node would answer the same way.
public enum UpstreamAnswerClassifier {
    public enum Verdict: Sendable, Equatable {
        case good
        case nodeFailure(String)
    }

    /// JSON-RPC error messages that mean the node lacks state it should have.
    static let nodeSideMessages: [[UInt8]] = [
        "missing trie node", "header not found", "required historical state unavailable",
        "leveldb: not found", "pebble: not found",
    ].map { Array($0.utf8) }
    static let errorMember = Array(#""error""#.utf8)

    public static func classify(status: Int, body: ByteBuffer) -> Verdict {
        if status >= 500 { return .nodeFailure("HTTP \(status)") }
        if status == 429 { return .nodeFailure("node rate-limited the gateway") }
        // Over the raw bytes: a multi-MB answer (eth_getLogs) is scanned at memchr's speed, where
        // walking a ByteBufferView byte by byte was most of the CPU such an answer cost.
        return body.withUnsafeReadableBytes { bytes -> Verdict in
            var first = 0
            var last = bytes.count - 1
            while first <= last, isSpace(bytes[first]) { first += 1 }
            while last >= first, isSpace(bytes[last]) { last -= 1 }
            guard first < last, (bytes[first] == UInt8(ascii: "{") && bytes[last] == UInt8(ascii: "}"))
                || (bytes[first] == UInt8(ascii: "[") && bytes[last] == UInt8(ascii: "]"))
            else { return .nodeFailure("answer is not JSON") }
            guard contains(bytes, errorMember, anchor: 2) else { return .good }
            for message in nodeSideMessages where contains(bytes, message, anchor: 0) {
                return .nodeFailure(String(decoding: message, as: UTF8.self))
            }
            return .good
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    /// Whether `needle` occurs in `haystack`. `memchr` finds each candidate by the needle's byte
    /// at `anchor` (for `"error"` its `r`: rare in JSON answers made of hex, unlike `"`), then
    /// `memcmp` checks the whole needle there.
    public static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8], anchor: Int) -> Bool {
        guard let base = haystack.baseAddress, !needle.isEmpty, haystack.count >= needle.count else { return false }
        let key = Int32(needle[anchor])
        // Candidate anchors lie in anchor...(count - needle.count + anchor).
        var from = anchor
        let end = haystack.count - needle.count + anchor + 1
        while from < end {
            guard let hit = memchr(base + from, key, end - from) else { return false }
            let at = base.distance(to: UnsafeRawPointer(hit))
            let start = at - anchor
            if needle.withUnsafeBytes({ memcmp(base + start, $0.baseAddress!, needle.count) }) == 0 { return true }
            from = at + 1
        }
        return false
    }
}
