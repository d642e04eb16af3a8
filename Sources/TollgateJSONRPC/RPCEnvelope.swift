import NIOCore

/// One JSON-RPC call as the gateway sees it: the method, and byte ranges into the original body.
///
/// `id` and the whole item are kept as ranges so the gateway can echo the id in errors and
/// forward items byte for byte without re-encoding them.
public struct RPCCall: Sendable, Equatable {
    /// The method name, decoded (JSON escapes resolved).
    public var method: String
    /// Raw bytes of the `id` value within the body, or nil for a notification.
    public var id: Range<Int>?
    /// Raw bytes of the whole request object within the body.
    public var span: Range<Int>

    public init(method: String, id: Range<Int>?, span: Range<Int>) {
        self.method = method
        self.id = id
        self.span = span
    }
}

/// One element of a request body: a call, or an element that is not a valid request.
public enum RPCItem: Sendable, Equatable {
    case call(RPCCall)
    /// Not a JSON-RPC request object; `id` is the raw id if one could be read.
    case invalid(id: Range<Int>?, reason: String)
}

/// A parsed request body.
public enum RPCEnvelope: Sendable, Equatable {
    case single(RPCItem)
    case batch([RPCItem])

    public var items: [RPCItem] {
        switch self {
        case .single(let item): [item]
        case .batch(let items): items
        }
    }

    public var isBatch: Bool {
        if case .batch = self { return true }
        return false
    }
}

/// Why a body could not be read as JSON-RPC at all.
public enum RPCEnvelopeError: Error, Equatable, Sendable {
    /// Not JSON: answer -32700.
    case parse(String)
    /// JSON, but not a request or batch: answer -32600.
    case invalidRequest(String)
}

/// Reads the JSON-RPC 2.0 envelope of a request body at byte level.
public enum RPCEnvelopeReader {
    /// Nesting deeper than this is refused before it can cost stack or time.
    public static let defaultMaxDepth = 128

    /// `names`: the gateway's known method names, which a call naming one of them shares
    /// rather than copying (`MethodNames`).
    public static func read(_ buffer: ByteBuffer, maxDepth: Int = defaultMaxDepth, names: MethodNames? = nil) -> Result<RPCEnvelope, RPCEnvelopeError> {
        buffer.withUnsafeReadableBytes { bytes in
            read(bytes: bytes, maxDepth: maxDepth, names: names)
        }
    }

    public static func read(bytes: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth, names: MethodNames? = nil) -> Result<RPCEnvelope, RPCEnvelopeError> {
        var scanner = JSONScanner(bytes: bytes, maxDepth: maxDepth)
        scanner.skipWhitespace()
        guard let first = scanner.peek() else { return .failure(.parse("empty body")) }
        do {
            switch first {
            case UInt8(ascii: "{"):
                let item = try readItem(&scanner, names: names)
                try finish(&scanner)
                return .success(.single(item))
            case UInt8(ascii: "["):
                let items = try readBatch(&scanner, names: names)
                try finish(&scanner)
                guard !items.isEmpty else { return .failure(.invalidRequest("empty batch")) }
                return .success(.batch(items))
            default:
                _ = try scanner.skipValue(depth: 0)
                try finish(&scanner)
                return .failure(.invalidRequest("request must be an object or an array"))
            }
        } catch {
            switch error {
            case .tooDeep:
                return .failure(.invalidRequest("JSON nesting deeper than \(maxDepth) levels"))
            case .syntax(let offset):
                return .failure(.parse("invalid JSON at byte \(offset)"))
            }
        }
    }

    private static func finish(_ scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        scanner.skipWhitespace()
        guard scanner.atEnd else { throw .syntax(at: scanner.index) }
    }

    private static func readBatch(_ scanner: inout JSONScanner, names: MethodNames?) throws(JSONScanner.Failure) -> [RPCItem] {
        scanner.index += 1
        scanner.skipWhitespace()
        var items: [RPCItem] = []
        if scanner.peek() == UInt8(ascii: "]") { scanner.index += 1; return items }
        while true {
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "{") {
                items.append(try readItem(&scanner, depth: 1, names: names))
            } else {
                _ = try scanner.skipValue(depth: 1)
                items.append(.invalid(id: nil, reason: "batch element is not an object"))
            }
            scanner.skipWhitespace()
            guard let next = scanner.peek() else { throw .syntax(at: scanner.index) }
            scanner.index += 1
            if next == UInt8(ascii: "]") { return items }
            guard next == UInt8(ascii: ",") else { throw .syntax(at: scanner.index - 1) }
        }
    }

    /// Reads one request object, validating all of it but decoding only the envelope members.
    private static func readItem(_ scanner: inout JSONScanner, depth: Int = 0, names: MethodNames?) throws(JSONScanner.Failure) -> RPCItem {
        let start = scanner.index
        guard depth + 1 <= scanner.maxDepth else { throw .tooDeep }
        scanner.index += 1
        var version: Range<Int>?
        var versionIsString = false
        var method: (content: Range<Int>, escaped: Bool)?
        var methodPresent = false
        var id: Range<Int>?
        var idKind: JSONScanner.Kind?
        var paramsKind: JSONScanner.Kind?

        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "}") {
            scanner.index += 1
        } else {
            while true {
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: "\"") else { throw .syntax(at: scanner.index) }
                let (name, nameEscaped) = try scanner.scanString()
                scanner.skipWhitespace()
                try scanner.expect(UInt8(ascii: ":"))
                scanner.skipWhitespace()
                let valueStart = scanner.index
                let member = nameEscaped ? nil : Member(scanner.bytes, name)
                switch member {
                case .jsonrpc:
                    let kind = try scanner.skipValue(depth: depth + 1)
                    versionIsString = kind == .string
                    version = valueStart..<scanner.index
                case .method:
                    methodPresent = true
                    if scanner.peek() == UInt8(ascii: "\"") {
                        method = try scanner.scanString()
                    } else {
                        _ = try scanner.skipValue(depth: depth + 1)
                        method = nil
                    }
                case .id:
                    idKind = try scanner.skipValue(depth: depth + 1)
                    id = valueStart..<scanner.index
                case .params:
                    paramsKind = try scanner.skipValue(depth: depth + 1)
                case nil:
                    _ = try scanner.skipValue(depth: depth + 1)
                }
                scanner.skipWhitespace()
                guard let next = scanner.peek() else { throw .syntax(at: scanner.index) }
                scanner.index += 1
                if next == UInt8(ascii: "}") { break }
                guard next == UInt8(ascii: ",") else { throw .syntax(at: scanner.index - 1) }
            }
        }
        let span = start..<scanner.index

        // Validation, in the order a client most needs to hear about it.
        let validID: Range<Int>?
        switch idKind {
        case nil: validID = nil
        case .string, .number, .null: validID = id
        default: return .invalid(id: nil, reason: "id must be a string, number or null")
        }
        guard let version, versionIsString, scanner.bytes.matches("\"2.0\"", at: version) else {
            return .invalid(id: validID, reason: "jsonrpc must be \"2.0\"")
        }
        guard methodPresent, let method else {
            return .invalid(id: validID, reason: methodPresent ? "method must be a string" : "missing method")
        }
        if let paramsKind, paramsKind != .array, paramsKind != .object {
            return .invalid(id: validID, reason: "params must be an array or an object")
        }
        let name: String
        if method.escaped {
            guard let decoded = JSONString.decode(scanner.bytes, method.content) else {
                return .invalid(id: validID, reason: "method is not valid UTF-8")
            }
            name = decoded
        } else {
            let raw = UnsafeRawBufferPointer(rebasing: scanner.bytes[method.content])
            if let known = names?.name(raw) {
                name = known
            } else if raw.allSatisfy({ $0 < 0x80 }) {
                // ASCII, as method names are: no validation to run, and no generic path
                // (`String(validating:as:)` looked up type metadata at run time, per request).
                name = String(unsafeUninitializedCapacity: raw.count) { $0.initialize(fromContentsOf: raw) }
            } else {
                guard let text = String(validating: raw, as: UTF8.self) else {
                    return .invalid(id: validID, reason: "method is not valid UTF-8")
                }
                name = text
            }
        }
        guard !name.isEmpty else { return .invalid(id: validID, reason: "method must not be empty") }
        return .call(RPCCall(method: name, id: validID, span: span))
    }

    private enum Member {
        case jsonrpc, method, id, params

        init?(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
            if bytes.matches("jsonrpc", at: range) { self = .jsonrpc }
            else if bytes.matches("method", at: range) { self = .method }
            else if bytes.matches("id", at: range) { self = .id }
            else if bytes.matches("params", at: range) { self = .params }
            else { return nil }
        }
    }
}

extension UnsafeRawBufferPointer {
    func matches(_ literal: StaticString, at range: Range<Int>) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard range.count == count else { return false }
        let base = literal.utf8Start
        for offset in 0..<count where self[range.lowerBound + offset] != base[offset] {
            return false
        }
        return true
    }
}

extension RPCEnvelopeReader {
    /// The first element of a call's `params` if it is a string without escapes (a raw
    /// transaction's hex), read from the call's bytes only when a caller needs it.
    public static func firstStringParam(of call: RPCCall, in body: ByteBuffer) -> String? {
        body.withUnsafeReadableBytes { all in
            let bytes = UnsafeRawBufferPointer(rebasing: all[call.span])
            var scanner = JSONScanner(bytes: bytes, maxDepth: defaultMaxDepth)
            scanner.index = 1
            guard scanner.seekMember("params"), scanner.peek() == UInt8(ascii: "[") else { return nil }
            scanner.index += 1
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "\""), let (content, escaped) = try? scanner.scanString(), !escaped else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[content]), as: UTF8.self)
        }
    }
}
