import NIOCore

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
        let view = body.readableBytesView
        guard let first = view.first(where: { !isSpace($0) }), let last = view.last(where: { !isSpace($0) }),
            (first == UInt8(ascii: "{") && last == UInt8(ascii: "}")) || (first == UInt8(ascii: "[") && last == UInt8(ascii: "]"))
        else { return .nodeFailure("answer is not JSON") }
        guard contains(view, errorMember) else { return .good }
        for message in nodeSideMessages where contains(view, message) {
            return .nodeFailure(String(decoding: message, as: UTF8.self))
        }
        return .good
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func contains(_ haystack: ByteBufferView, _ needle: [UInt8]) -> Bool {
        guard let head = needle.first, haystack.count >= needle.count else { return false }
        var index = haystack.startIndex
        let end = haystack.endIndex - needle.count
        while index <= end {
            if haystack[index] == head, haystack[index..<(index + needle.count)].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
