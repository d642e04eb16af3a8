import NIOCore
import TollgateCore

/// One node of a network's pool, parsed once from config.
public struct UpstreamNode: Sendable, Equatable {
    public var url: String
    public var scheme: Scheme
    public var host: String
    public var port: Int
    public var path: String
    /// `host:port`, the label used in metrics and logs (never the URL: it may carry a secret).
    public var name: String
    /// The request line and fixed headers, computed once; requests append their own.
    private(set) var requestPrefix: ByteBuffer
    /// Extra headers sent to this node on every request (e.g. a provider's auth header), as
    /// `Name: value` lines. Never logged.
    public var headers: [String] = [] {
        didSet { requestPrefix = Self.prefix(path: path, host: hostHeader, headers: headers, compression: compression) }
    }
    private let hostHeader: String
    /// This node's own TLS client context (private CA, client certificate); nil: the pool's.
    public var tls: UpstreamTLS?
    /// Share of traffic relative to the other nodes.
    public var weight: Double = 1
    /// Fallbacks serve only when no primary is eligible.
    public var role: NodeView.Role = .primary
    /// Methods this node takes (e.g. only archive nodes take `debug_*`).
    public var methods = MethodPolicy()
    /// Requests in flight to this node from one event loop, at most.
    public var maxInFlight: Int?
    /// Ask the node for gzip (`Accept-Encoding: gzip`): worth it across a network, not on
    /// loopback. On by default for https nodes.
    public var compression: Bool {
        didSet { requestPrefix = Self.prefix(path: path, host: hostHeader, headers: headers, compression: compression) }
    }

    public enum Scheme: String, Sendable { case http, https }

    public init?(url: String) {
        // Printable ASCII only: the URL's path goes verbatim into every request line.
        guard url.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        let scheme: Scheme
        var rest: Substring
        if url.hasPrefix("http://") {
            scheme = .http
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            scheme = .https
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        rest = rest.dropFirst(authority.count)
        guard !authority.isEmpty, !authority.contains("@") else { return nil }
        var host = Substring(authority)
        var port = scheme == .https ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let value = Int(after.dropFirst()), (1...65535).contains(value) else { return nil }
                port = value
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else { return nil }
            port = value
            host = authority[..<colon]
        }
        guard !host.isEmpty else { return nil }
        self.url = url
        self.scheme = scheme
        self.host = String(host)
        self.port = port
        self.path = rest.isEmpty ? "/" : String(rest)
        let bracketed = host.contains(":") ? "[\(host)]" : String(host)
        self.name = "\(bracketed):\(port)"
        let hostHeader = port == (scheme == .https ? 443 : 80) ? bracketed : "\(bracketed):\(port)"
        self.hostHeader = hostHeader
        self.compression = scheme == .https
        self.requestPrefix = Self.prefix(path: self.path, host: hostHeader, headers: [], compression: scheme == .https)
    }
}

extension UpstreamNode {
    static func prefix(path: String, host: String, headers: [String], compression: Bool) -> ByteBuffer {
        var text = "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\n"
        if compression { text += "Accept-Encoding: gzip\r\n" }
        for header in headers { text += header + "\r\n" }
        return ByteBuffer(string: text)
    }

    /// Whether `name: value` may be sent as a header: a token name, a value without controls.
    public static func isValidHeader(name: String, value: String) -> Bool {
        let tokenChars = Set("!#$%&'*+-.^_`|~".utf8)
        return !name.isEmpty && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || tokenChars.contains($0) }
            && value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}

/// A network's upstream settings as the pool needs them.
public struct UpstreamNetwork: Sendable {
    public var name: String
    public var nodes: [UpstreamNode]
    public var timeout: Duration
    public var connectTimeout: Duration
    public var maxIdlePerNode: Int
    public var maxResponseBytes: Int
    /// One try on one node, at most: a hung node costs this, not the whole request deadline.
    public var attemptTimeout: Duration
    /// Nodes further than this behind the pool's head leave rotation.
    public var maxBlockLag: UInt64
    /// Blocks below the head taken as final when nodes do not answer for the `finalized` tag.
    public var finalityDepth: UInt64 = 64
    public var circuitBreaker: CircuitBreaker.Settings
    /// Retries allowed as a share of recent requests.
    public var retryRatio: Double
    /// Tries per request, first included.
    public var maxAttempts: Int
    /// Longer (or shorter) deadlines for some methods, e.g. `eth_getLogs` or `debug_*`; they
    /// replace both the request and the per-try timeout for requests that contain them.
    public var methodTimeouts: [(MethodMatcher, Duration)] = []
    /// Opt-in: after this delay without an answer, a read goes to a second node as well.
    public var hedge: HedgePolicy?
    /// Told when a node's compressed answer could not be used (a 502): the application counts it.
    public var undecodableAnswer: (@Sendable (UndecodableAnswer) -> Void)?

    public init(
        name: String, nodes: [UpstreamNode], timeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(3),
        maxIdlePerNode: Int = 128, maxResponseBytes: Int = 256 << 20, attemptTimeout: Duration? = nil,
        maxBlockLag: UInt64 = 10, circuitBreaker: CircuitBreaker.Settings = .init(), retryRatio: Double = 0.2,
        maxAttempts: Int = 3, methodTimeouts: [(MethodMatcher, Duration)] = [], hedge: HedgePolicy? = nil
    ) {
        self.name = name
        self.nodes = nodes
        self.timeout = timeout
        self.connectTimeout = connectTimeout
        self.maxIdlePerNode = maxIdlePerNode
        self.maxResponseBytes = maxResponseBytes
        self.attemptTimeout = attemptTimeout ?? timeout / 3
        self.maxBlockLag = maxBlockLag
        self.circuitBreaker = circuitBreaker
        self.retryRatio = retryRatio
        self.maxAttempts = max(1, maxAttempts)
        self.methodTimeouts = methodTimeouts
        self.hedge = hedge
    }
}

/// When a pool sends a read to a second node while the first is still working on it.
public enum HedgePolicy: Sendable, Equatable {
    case fixed(Duration)
    /// The given quantile of the pool's recent latencies, never below `minimum`.
    case quantile(Double, minimum: Duration)
}
