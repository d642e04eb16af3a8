/// Request IDs: a random per-loop prefix plus a counter, so making one costs no syscall and no
/// lock, yet IDs stay unique across loops, replicas and restarts.
///
/// Base 62, 10 random characters (59 bits) then the counter: up to 15 bytes, which Swift keeps
/// inline in the String itself, so an ID costs no allocation for the first 916 million requests
/// of a loop (the counter then takes a sixth character, and the ID a heap buffer).
struct RequestIDGenerator {
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
    static let prefixLength = 10
    private var prefix: (UInt64, UInt64) = (0, 0)
    private var counter: UInt64 = 0

    init() {
        var generator = SystemRandomNumberGenerator()
        self.init(random: generator.next())
    }

    init(random: UInt64) {
        var value = random
        withUnsafeMutableBytes(of: &prefix) { raw in
            for index in 0..<Self.prefixLength {
                raw[index] = Self.alphabet[Int(value % 62)]
                value /= 62
            }
        }
    }

    mutating func next() -> String {
        counter &+= 1
        var bytes: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &bytes) { raw in
            withUnsafeBytes(of: prefix) { prefix in
                for index in 0..<Self.prefixLength { raw[index] = prefix[index] }
            }
            // The counter's digits, least significant first, then reversed into place.
            var digits = 0
            var rest = counter
            repeat {
                raw[Self.prefixLength + digits] = Self.alphabet[Int(rest % 62)]
                rest /= 62
                digits += 1
            } while rest > 0
            var low = Self.prefixLength
            var high = Self.prefixLength + digits - 1
            while low < high {
                raw.swapAt(low, high)
                low += 1
                high -= 1
            }
            return String(decoding: UnsafeRawBufferPointer(rebasing: raw[0..<(Self.prefixLength + digits)]), as: UTF8.self)
        }
    }

    /// An inbound `X-Request-ID` is kept if it is 1–128 visible ASCII characters.
    static func isAcceptable(_ value: String) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        return utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }
}
