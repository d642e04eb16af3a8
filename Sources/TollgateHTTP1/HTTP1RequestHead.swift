import NIOCore

/// A request head as read: the head's bytes (a slice of the read buffer, not a copy), the
/// framing decided from them, and where the headers Tollgate reads are. Other headers are
/// validated and counted but never looked at again.
public struct HTTP1RequestHead: Sendable {
    public enum Method: Sendable, Equatable {
        case get, head, post, put, delete, options, patch, connect, trace, other
    }

    public var method: Method
    /// 0 or 1 (HTTP/1.0, HTTP/1.1).
    public var minorVersion: Int
    /// The request line and every field line, ending with the blank line.
    public var bytes: ByteBuffer
    public var methodField: HTTP1Field
    public var target: HTTP1Field
    /// nil: no body (neither Content-Length nor chunked).
    public var contentLength: Int?
    public var chunked: Bool
    /// Whether the connection may carry another request after this one.
    public var keepAlive: Bool
    /// `Connection: upgrade` was sent (WebSocket hand-over).
    public var connectionUpgrade: Bool
    /// `Expect: 100-continue`: the client waits for a 100 before sending the body.
    public var expectsContinue: Bool
    public var headerCount: Int

    public var host: HTTP1Field?
    public var contentType: HTTP1Field?
    public var authorization: HTTP1Field?
    public var apiKey: HTTP1Field?
    public var requestID: HTTP1Field?
    public var origin: HTTP1Field?
    public var userAgent: HTTP1Field?
    /// `Accept-Encoding`: whether the answer may go out compressed (`HTTP1ContentCoding.negotiate`).
    public var acceptEncoding: HTTP1Field?
    /// `Content-Encoding` of the body: a gzip or deflate body is inflated (bounded) before it is read.
    public var contentEncoding: HTTP1Field?
    /// `Cache-Control` (the response cache honours `no-cache` for plans that allow it).
    public var cacheControl: HTTP1Field?
    public var traceparent: HTTP1Field?
    public var tracestate: HTTP1Field?
    public var upgrade: HTTP1Field?
    public var webSocketKey: HTTP1Field?
    public var webSocketVersion: HTTP1Field?
    public var webSocketProtocol: HTTP1Field?
    /// Every `X-Forwarded-For` line, in order (an empty array allocates nothing).
    public var forwardedFor: [HTTP1Field]

    /// The field's bytes as a String (allocates past 15 bytes: read only what is needed).
    public func string(_ field: HTTP1Field) -> String {
        bytes.getString(at: bytes.readerIndex + Int(field.start), length: Int(field.count)) ?? ""
    }

    public func string(_ field: HTTP1Field?) -> String? {
        field.map { string($0) }
    }

    /// Calls `body` with the field's bytes, without copying them. Inlinable: callers in other
    /// modules would otherwise go through an unspecialized generic per call.
    @inlinable
    public func withBytes<T>(_ field: HTTP1Field, _ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try bytes.withUnsafeReadableBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[Int(field.start)..<Int(field.start) + Int(field.count)]))
        }
    }

    /// The target's bytes as a String.
    public var uri: String { string(target) }

    /// The method as it was sent.
    public var methodName: String { string(methodField) }

    /// The coding the client's body is in (identity without the header).
    public var bodyCoding: HTTP1ContentCoding {
        guard let contentEncoding else { return .identity }
        return withBytes(contentEncoding) { HTTP1ContentCoding.of($0) }
    }

    /// The coding the answer may be sent in, from `Accept-Encoding`; nil: as it is.
    public var answerCoding: HTTP1ContentCoding? {
        guard let acceptEncoding else { return nil }
        return withBytes(acceptEncoding) { HTTP1ContentCoding.negotiate($0) }
    }

    /// True when the field is present and equals `lowercase` ignoring ASCII case.
    public func field(_ field: HTTP1Field?, equalsIgnoringCase lowercase: StaticString) -> Bool {
        guard let field else { return false }
        return withBytes(field) { HTTP1Syntax.equalsIgnoringCase($0, 0, $0.count, lowercase) }
    }
}

extension HTTP1RequestHead.Method {
    init(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ count: Int) {
        func is_(_ name: StaticString) -> Bool {
            guard count == name.utf8CodeUnitCount else { return false }
            for offset in 0..<count where bytes[start + offset] != name.utf8Start[offset] { return false }
            return true
        }
        // Methods are case-sensitive (RFC 9110 §9.1).
        switch count {
        case 3: self = is_("GET") ? .get : is_("PUT") ? .put : .other
        case 4: self = is_("POST") ? .post : is_("HEAD") ? .head : .other
        case 5: self = is_("PATCH") ? .patch : is_("TRACE") ? .trace : .other
        case 6: self = is_("DELETE") ? .delete : .other
        case 7: self = is_("OPTIONS") ? .options : is_("CONNECT") ? .connect : .other
        default: self = .other
        }
    }
}
