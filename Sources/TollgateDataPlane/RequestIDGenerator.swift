/// Request IDs: a random per-loop prefix plus a counter, so making one costs no syscall and no
/// lock, yet IDs stay unique across loops, replicas and restarts.
struct RequestIDGenerator {
    private let prefix: String
    private var counter: UInt64 = 0

    init() {
        var generator = SystemRandomNumberGenerator()
        let value: UInt64 = generator.next()
        let hex = String(value, radix: 16)
        prefix = String(repeating: "0", count: 16 - hex.count) + hex + "-"
    }

    mutating func next() -> String {
        counter &+= 1
        return prefix + String(counter, radix: 16)
    }

    /// An inbound `X-Request-ID` is kept if it is 1–128 visible ASCII characters.
    static func isAcceptable(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        return utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }
}
