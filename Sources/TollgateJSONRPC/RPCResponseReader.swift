import NIOCore

/// Reads the few values the gateway itself asks nodes for (health checks): each response
/// object's `id` and raw `result`, or that it carried an `error`.
public enum RPCResponseReader {
    public struct Answer: Sendable, Equatable {
        /// Raw bytes of the id value (e.g. `1` or `"a"`).
        public var id: String
        /// Raw bytes of the result value, nil if the answer was an error.
        public var result: String?
        /// Raw bytes of `params` and `subscription`: a node's `eth_subscription` notification
        /// is `{"method":"eth_subscription","params":{"subscription":…,"result":…}}`, read
        /// twice (the object, then its params).
        public var params: String?
        public var subscription: String?

        public init(id: String, result: String?, params: String? = nil, subscription: String? = nil) {
            self.id = id
            self.result = result
            self.params = params
            self.subscription = subscription
        }
    }

    /// The answers in a response body (an object or an array of them); nil if it is not JSON.
    public static func answers(_ buffer: ByteBuffer) -> [Answer]? {
        buffer.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes: bytes, maxDepth: 64)
            do {
                scanner.skipWhitespace()
                var answers: [Answer] = []
                switch scanner.peek() {
                case UInt8(ascii: "{"):
                    answers.append(try readObject(&scanner))
                case UInt8(ascii: "["):
                    scanner.index += 1
                    scanner.skipWhitespace()
                    if scanner.peek() == UInt8(ascii: "]") { scanner.index += 1; break }
                    while true {
                        scanner.skipWhitespace()
                        answers.append(try readObject(&scanner))
                        scanner.skipWhitespace()
                        guard let next = scanner.peek() else { throw JSONScanner.Failure.syntax(at: scanner.index) }
                        scanner.index += 1
                        if next == UInt8(ascii: "]") { break }
                        guard next == UInt8(ascii: ",") else { throw JSONScanner.Failure.syntax(at: scanner.index) }
                    }
                default:
                    return nil
                }
                scanner.skipWhitespace()
                return scanner.atEnd ? answers : nil
            } catch {
                return nil
            }
        }
    }

    private static func readObject(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) -> Answer {
        guard scanner.peek() == UInt8(ascii: "{") else { throw .syntax(at: scanner.index) }
        let start = scanner.index
        _ = try scanner.skipValue(depth: 0)
        let end = scanner.index
        // Walk the object's members again, now that it is known to be valid.
        var inner = JSONScanner(bytes: UnsafeRawBufferPointer(rebasing: scanner.bytes[start..<end]), maxDepth: 64)
        inner.index = 1
        var answer = Answer(id: "null", result: nil)
        inner.skipWhitespace()
        while inner.peek() == UInt8(ascii: "\"") {
            let (name, _) = try inner.scanString()
            inner.skipWhitespace()
            try inner.expect(UInt8(ascii: ":"))
            inner.skipWhitespace()
            let valueStart = inner.index
            _ = try inner.skipValue(depth: 1)
            let raw = String(decoding: UnsafeRawBufferPointer(rebasing: inner.bytes[valueStart..<inner.index]), as: UTF8.self)
            if inner.bytes.matches("id", at: name) { answer.id = raw }
            if inner.bytes.matches("result", at: name) { answer.result = raw }
            if inner.bytes.matches("params", at: name) { answer.params = raw }
            if inner.bytes.matches("subscription", at: name) { answer.subscription = raw }
            inner.skipWhitespace()
            if inner.peek() == UInt8(ascii: ",") { inner.index += 1; inner.skipWhitespace() }
        }
        return answer
    }

    /// For a single answer object: where its `id` value is (to splice another caller's id in),
    /// and whether it is an error. Nil for anything else (a batch, not JSON, no id).
    public static func idRange(_ buffer: ByteBuffer) -> (id: Range<Int>, isError: Bool)? {
        buffer.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes: bytes, maxDepth: 64)
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "{") else { return nil }
            scanner.index += 1
            var id: Range<Int>?
            var isError = false
            var hasResult = false
            scanner.skipWhitespace()
            while scanner.peek() == UInt8(ascii: "\"") {
                guard let (name, _) = try? scanner.scanString() else { return nil }
                scanner.skipWhitespace()
                guard (try? scanner.expect(UInt8(ascii: ":"))) != nil else { return nil }
                scanner.skipWhitespace()
                let start = scanner.index
                guard (try? scanner.skipValue(depth: 1)) != nil else { return nil }
                if bytes.matches("id", at: name) { id = start..<scanner.index }
                if bytes.matches("error", at: name) { isError = true }
                if bytes.matches("result", at: name) { hasResult = true }
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: ",") { scanner.index += 1; scanner.skipWhitespace() }
            }
            guard scanner.peek() == UInt8(ascii: "}"), let id, isError || hasResult else { return nil }
            return (id, isError)
        }
    }

    /// One answer object of a batch answer: where it is, where its `id` is, whether it is an error.
    public struct Item: Sendable, Equatable {
        public var span: Range<Int>
        public var id: Range<Int>
        public var isError: Bool
    }

    /// The answer objects of a batch answer (a JSON array of objects, each with an `id` and a
    /// `result` or `error`), offsets relative to the reader index; nil for anything else. The
    /// response cache uses it to put a node's answers back in the order of the calls (nodes may
    /// answer a batch in any order) and to store each answer on its own.
    public static func batchItems(_ buffer: ByteBuffer) -> [Item]? {
        let spans: [Range<Int>]? = buffer.withUnsafeReadableBytes { bytes in
            var scanner = JSONScanner(bytes: bytes, maxDepth: 64)
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "[") else { return nil }
            scanner.index += 1
            scanner.skipWhitespace()
            var spans: [Range<Int>] = []
            if scanner.peek() == UInt8(ascii: "]") {
                scanner.index += 1
            } else {
                while true {
                    scanner.skipWhitespace()
                    let start = scanner.index
                    guard scanner.peek() == UInt8(ascii: "{"), (try? scanner.skipValue(depth: 1)) != nil else { return nil }
                    spans.append(start..<scanner.index)
                    scanner.skipWhitespace()
                    guard let next = scanner.peek() else { return nil }
                    scanner.index += 1
                    if next == UInt8(ascii: "]") { break }
                    guard next == UInt8(ascii: ",") else { return nil }
                }
            }
            scanner.skipWhitespace()
            return scanner.atEnd ? spans : nil
        }
        guard let spans else { return nil }
        var items: [Item] = []
        items.reserveCapacity(spans.count)
        for span in spans {
            guard let object = buffer.getSlice(at: buffer.readerIndex + span.lowerBound, length: span.count),
                let (id, isError) = idRange(object)
            else { return nil }
            items.append(Item(span: span, id: (span.lowerBound + id.lowerBound)..<(span.lowerBound + id.upperBound), isError: isError))
        }
        return items
    }

    /// A JSON hex quantity such as `"0x1a"` as a number.
    public static func quantity(_ raw: String?) -> UInt64? {
        guard let raw, raw.hasPrefix("\"0x"), raw.hasSuffix("\""), raw.count > 4 else { return nil }
        return UInt64(raw.dropFirst(3).dropLast(), radix: 16)
    }
}
