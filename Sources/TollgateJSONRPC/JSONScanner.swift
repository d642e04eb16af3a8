/// A validating JSON scanner over raw bytes that never builds a document tree.
///
/// The gateway must refuse bodies that are not JSON (-32700) but must not pay for decoding
/// params it only forwards. The scanner therefore validates every byte (RFC 8259 grammar,
/// bounded nesting) and hands back byte ranges; only the few envelope fields the gateway needs
/// are ever turned into Swift values.
struct JSONScanner {
    enum Failure: Error, Equatable {
        case syntax(at: Int)
        case tooDeep
    }

    enum Kind: Equatable {
        case object, array, string, number, bool, null
    }

    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var index: Int = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    var atEnd: Bool { index >= bytes.count }

    func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        guard index < bytes.count, bytes[index] == byte else { throw .syntax(at: index) }
        index += 1
    }

    /// Inside an object (just past its `{`), moves to the value of member `name`: true with
    /// `index` at the value, false (and `index` unspecified) when the object has no such member.
    mutating func seekMember(_ name: StaticString) -> Bool {
        skipWhitespace()
        while peek() == UInt8(ascii: "\"") {
            guard let (key, _) = try? scanString() else { return false }
            skipWhitespace()
            guard (try? expect(UInt8(ascii: ":"))) != nil else { return false }
            skipWhitespace()
            if bytes.matches(name, at: key) { return true }
            guard (try? skipValue(depth: 1)) != nil else { return false }
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { index += 1; skipWhitespace() }
        }
        return false
    }

    /// Skips one value starting at `index` (no leading whitespace) and returns its kind.
    mutating func skipValue(depth: Int) throws(Failure) -> Kind {
        guard let byte = peek() else { throw .syntax(at: index) }
        switch byte {
        case UInt8(ascii: "{"):
            try skipObject(depth: depth + 1)
            return .object
        case UInt8(ascii: "["):
            try skipArray(depth: depth + 1)
            return .array
        case UInt8(ascii: "\""):
            _ = try scanString()
            return .string
        case UInt8(ascii: "t"):
            try skipLiteral("true")
            return .bool
        case UInt8(ascii: "f"):
            try skipLiteral("false")
            return .bool
        case UInt8(ascii: "n"):
            try skipLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try skipNumber()
            return .number
        default:
            throw .syntax(at: index)
        }
    }

    private mutating func skipObject(depth: Int) throws(Failure) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "}") { index += 1; return }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw .syntax(at: index) }
            _ = try scanString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            _ = try skipValue(depth: depth)
            skipWhitespace()
            guard let next = peek() else { throw .syntax(at: index) }
            index += 1
            if next == UInt8(ascii: "}") { return }
            guard next == UInt8(ascii: ",") else { throw .syntax(at: index - 1) }
        }
    }

    private mutating func skipArray(depth: Int) throws(Failure) {
        guard depth <= maxDepth else { throw .tooDeep }
        index += 1
        skipWhitespace()
        if peek() == UInt8(ascii: "]") { index += 1; return }
        while true {
            skipWhitespace()
            _ = try skipValue(depth: depth)
            skipWhitespace()
            guard let next = peek() else { throw .syntax(at: index) }
            index += 1
            if next == UInt8(ascii: "]") { return }
            guard next == UInt8(ascii: ",") else { throw .syntax(at: index - 1) }
        }
    }

    /// Scans a string starting at its opening quote. Returns the range of its content (between
    /// the quotes) and whether it contains escapes, so callers can take the fast path.
    mutating func scanString() throws(Failure) -> (content: Range<Int>, escaped: Bool) {
        index += 1
        let start = index
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                let content = start..<index
                index += 1
                return (content, escaped)
            case UInt8(ascii: "\\"):
                escaped = true
                index += 1
                guard let next = peek() else { throw .syntax(at: index) }
                switch next {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                    UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    index += 1
                    for _ in 0..<4 {
                        guard let hex = peek(), hex.isHexDigit else { throw .syntax(at: index) }
                        index += 1
                    }
                default:
                    throw .syntax(at: index)
                }
            case 0x00..<0x20:
                throw .syntax(at: index)
            default:
                index += 1
            }
        }
        throw .syntax(at: index)
    }

    private mutating func skipLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw .syntax(at: index) }
        let base = literal.utf8Start
        for offset in 0..<count where bytes[index + offset] != base[offset] {
            throw .syntax(at: index + offset)
        }
        index += count
    }

    private mutating func skipNumber() throws(Failure) {
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), first.isDigit else { throw .syntax(at: index) }
        index += 1
        if first != UInt8(ascii: "0") {
            while let byte = peek(), byte.isDigit { index += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let byte = peek(), byte.isDigit else { throw .syntax(at: index) }
            while let byte = peek(), byte.isDigit { index += 1 }
        }
        if let byte = peek(), byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            index += 1
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { index += 1 }
            guard let byte = peek(), byte.isDigit else { throw .syntax(at: index) }
            while let byte = peek(), byte.isDigit { index += 1 }
        }
    }
}

extension UInt8 {
    var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }
    var isHexDigit: Bool {
        isDigit || (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "f"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "F"))
    }
}
