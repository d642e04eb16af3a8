import NIOCore

/// A JSON-RPC error the gateway itself answers with.
///
/// Codes follow the design note's table, so clients see one documented mapping whatever the
/// cause: -32700 parse, -32600 invalid request, -32601 method not allowed, -32001 missing or
/// unknown key, -32002 forbidden, -32005 limited, -32603 upstream trouble.
public struct RPCError: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    /// Extra members of `data`, already encoded as JSON values (e.g. `["retryAfterMs": "1200"]`).
    public var data: [(String, String)]

    public init(code: Int, message: String, data: [(String, String)] = []) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static func == (lhs: RPCError, rhs: RPCError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
            && lhs.data.map { $0.0 + "=" + $0.1 } == rhs.data.map { $0.0 + "=" + $0.1 }
    }

    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let unauthorized = -32001
    public static let forbidden = -32002
    public static let limitExceeded = -32005
}

/// Writes gateway-made JSON-RPC responses, echoing the caller's id byte for byte.
public enum RPCErrorWriter {
    /// Appends one error response object. `id` is a range into `body`, or nil for `null`.
    public static func append(_ error: RPCError, id: Range<Int>?, body: ByteBuffer?, to output: inout [UInt8]) {
        output.append(contentsOf: #"{"jsonrpc":"2.0","id":"#.utf8)
        if let id, let body, let raw = body.getBytes(at: body.readerIndex + id.lowerBound, length: id.count) {
            output.append(contentsOf: raw)
        } else {
            output.append(contentsOf: "null".utf8)
        }
        output.append(contentsOf: #","error":{"code":"#.utf8)
        output.append(contentsOf: String(error.code).utf8)
        output.append(contentsOf: #","message":"#.utf8)
        JSONString.appendQuoted(error.message, to: &output)
        if !error.data.isEmpty {
            output.append(contentsOf: #","data":{"#.utf8)
            for (index, (name, value)) in error.data.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                JSONString.appendQuoted(name, to: &output)
                output.append(UInt8(ascii: ":"))
                output.append(contentsOf: value.utf8)
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(contentsOf: "}}".utf8)
    }

    /// One error response as a complete body.
    public static func body(_ error: RPCError, id: Range<Int>?, in body: ByteBuffer?) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        append(error, id: id, body: body, to: &output)
        return output
    }
}
