/// Why a message was refused, with the status a server answers it with.
///
/// Every refusal closes the connection afterwards: once framing is in doubt, no byte after it
/// can be trusted to start a new message (the root of request smuggling).
public enum HTTP1ParseError: Error, Equatable, Sendable {
    /// Syntax the RFC does not allow, or framing that could be read two ways (400).
    case malformed(Reason)
    /// The head is larger than `maxHeaderBytes` (431).
    case headTooLarge
    /// More header fields than `maxHeaders` (431).
    case tooManyHeaders
    /// The body is larger than `maxBodyBytes`, announced or counted (413).
    case bodyTooLarge
    /// A transfer coding other than chunked (501).
    case unsupportedTransferCoding
    /// An HTTP version other than 1.0 or 1.1 (505).
    case unsupportedVersion
    /// A method this server does not implement, or one not spelled in capitals (501).
    case unsupportedMethod
    /// The peer closed in the middle of a message.
    case truncated

    /// What exactly was wrong, for the log line and the error message.
    public enum Reason: String, Sendable {
        case requestLine = "malformed request line"
        case statusLine = "malformed status line"
        case method = "invalid method"
        case target = "invalid request target"
        case version = "invalid HTTP version"
        case bareLF = "line ends without CR"
        case headerName = "invalid header name"
        case headerValue = "invalid header value"
        case whitespaceBeforeColon = "whitespace between header name and colon"
        case obsFold = "obsolete line folding"
        case contentLength = "invalid Content-Length"
        case duplicateContentLength = "more than one Content-Length"
        case lengthAndChunked = "both Content-Length and Transfer-Encoding"
        case chunkedNotLast = "Transfer-Encoding does not end in chunked"
        case transferEncodingInHTTP10 = "Transfer-Encoding in an HTTP/1.0 message"
        case duplicateTransferEncoding = "more than one Transfer-Encoding"
        case missingHost = "no Host header"
        case duplicateHost = "more than one Host header"
        case chunkSize = "invalid chunk size"
        case chunkExtension = "invalid chunk extension"
        case chunkTerminator = "chunk data not followed by CRLF"
        case trailer = "invalid trailer field"
    }

    /// The HTTP status a server answers with.
    public var status: Int {
        switch self {
        case .malformed, .truncated: 400
        case .headTooLarge, .tooManyHeaders: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferCoding, .unsupportedMethod: 501
        case .unsupportedVersion: 505
        }
    }

    /// A short sentence for the client and the log.
    public var message: String {
        switch self {
        case .malformed(let reason): "malformed HTTP request: \(reason.rawValue)"
        case .headTooLarge: "request headers too large"
        case .tooManyHeaders: "too many request headers"
        case .bodyTooLarge: "request body too large"
        case .unsupportedTransferCoding: "unsupported transfer coding (only chunked)"
        case .unsupportedVersion: "unsupported HTTP version"
        case .unsupportedMethod: "method not implemented"
        case .truncated: "connection closed in the middle of a message"
        }
    }
}

/// Bounds on what a parser accepts; past them it refuses instead of buffering.
public struct HTTP1Limits: Sendable, Equatable {
    /// The most `maxHeaderBytes` may be: a field's place in the head is two `UInt16`s
    /// (`HTTP1Field`), which keeps a request head small enough to move cheaply.
    public static let headerBytesCeiling = Int(UInt16.max)

    /// The request or status line plus every header line and the blank line after them
    /// (at most `headerBytesCeiling`).
    public var maxHeaderBytes: Int {
        didSet { maxHeaderBytes = min(maxHeaderBytes, Self.headerBytesCeiling) }
    }
    public var maxHeaders: Int
    public var maxBodyBytes: Int

    public init(maxHeaderBytes: Int = 16_384, maxHeaders: Int = 100, maxBodyBytes: Int = 1 << 20) {
        self.maxHeaderBytes = min(maxHeaderBytes, Self.headerBytesCeiling)
        self.maxHeaders = maxHeaders
        self.maxBodyBytes = maxBodyBytes
    }
}
