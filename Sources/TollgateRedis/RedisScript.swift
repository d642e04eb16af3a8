import Crypto

/// A Lua script run with `EVALSHA`; the client sends `SCRIPT LOAD` when a server answers
/// `NOSCRIPT` (after a restart or a failover) and retries.
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        let digest = Insecure.SHA1.hash(data: Array(source.utf8))
        let hex = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in digest {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0xF)])
        }
        sha1 = String(decoding: text, as: UTF8.self)
    }
}
