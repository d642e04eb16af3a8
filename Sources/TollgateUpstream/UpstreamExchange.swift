import NIOCore
import NIOHTTP1

/// What the data plane asks of a pool.
public struct UpstreamRequest {
    public var body: ByteBuffer
    public var requestID: String
    /// Whether a node-side failure may be retried on another node (not for writes whose
    /// effect may already have happened).
    public var retryable: Bool
    /// The methods inside, so that only nodes taking all of them are chosen.
    public var methods: UpstreamMethods
    /// A read about the latest block: only nodes at the pool's head take it while one can
    /// (`NodeSelection.eligible(atHead:)`).
    public var atHead = false
    /// The trace context and observer, in one box that most requests do not have: the request
    /// is copied into the pool and recycled there, and each reference-counted field costs a
    /// retain and a release on each of those (`bench/retains`). Copied on write.
    private var tracing: Tracing?

    private final class Tracing {
        var traceparent: String?
        var tracestate: String?
        var observer: (any UpstreamAttemptObserver)?

        init(traceparent: String?, tracestate: String?, observer: (any UpstreamAttemptObserver)?) {
            self.traceparent = traceparent
            self.tracestate = tracestate
            self.observer = observer
        }

        var isEmpty: Bool { traceparent == nil && tracestate == nil && observer == nil }
    }

    /// W3C trace context to send to the node: the client's own when the request is not traced
    /// here, or the attempt span's (set per attempt by `observer`).
    public var traceparent: String? {
        get { tracing?.traceparent }
        set { if newValue != nil || tracing != nil { modifyTracing { $0.traceparent = newValue } } }
    }

    public var tracestate: String? {
        get { tracing?.tracestate }
        set { if newValue != nil || tracing != nil { modifyTracing { $0.tracestate = newValue } } }
    }

    /// Follows each attempt (tracing); nil for untraced requests.
    public var observer: (any UpstreamAttemptObserver)? {
        get { tracing?.observer }
        set { if newValue != nil || tracing != nil { modifyTracing { $0.observer = newValue } } }
    }

    /// Drops the trace context and observer (a recycled request lets go of the trace).
    public mutating func clearTracing() { tracing = nil }

    private mutating func modifyTracing(_ change: (Tracing) -> Void) {
        if tracing == nil {
            tracing = Tracing(traceparent: nil, tracestate: nil, observer: nil)
        } else if !isKnownUniquelyReferenced(&tracing) {
            // Another copy of the request shares the box (a hedge's copy): this one gets its own.
            let shared = tracing!
            tracing = Tracing(traceparent: shared.traceparent, tracestate: shared.tracestate, observer: shared.observer)
        }
        change(tracing!)
        if tracing!.isEmpty { tracing = nil }
    }

    public init(
        body: ByteBuffer, requestID: String, retryable: Bool = true, methods: UpstreamMethods = [], traceparent: String? = nil,
        tracestate: String? = nil, observer: (any UpstreamAttemptObserver)? = nil
    ) {
        self.body = body
        self.requestID = requestID
        self.retryable = retryable
        self.methods = methods
        if traceparent != nil || tracestate != nil || observer != nil {
            tracing = Tracing(traceparent: traceparent, tracestate: tracestate, observer: observer)
        }
    }
}

/// The methods of a request: one for a single call without building an array, or a batch's.
public enum UpstreamMethods: Sequence, ExpressibleByArrayLiteral, Sendable {
    case one(String)
    case many([String])

    public init(arrayLiteral elements: String...) { self = .many(elements) }

    public func makeIterator() -> Iterator {
        switch self {
        case .one(let method): Iterator(single: method, many: nil)
        case .many(let methods): Iterator(single: nil, many: methods.makeIterator())
        }
    }

    public struct Iterator: IteratorProtocol {
        var single: String?
        var many: IndexingIterator<[String]>?

        public mutating func next() -> String? {
            if let method = single {
                single = nil
                return method
            }
            return many?.next()
        }
    }
}

/// A node's answer, passed to the client unchanged.
public struct UpstreamResponse: Sendable {
    public var status: HTTPResponseStatus
    /// Replacing it (a merged batch, a spliced id) drops `gzipped`, which no longer matches.
    public var body: ByteBuffer {
        didSet { gzipped = nil }
    }
    public var node: String
    public var attempts: Int
    /// Time spent waiting on nodes, for the gateway-overhead metric.
    public var upstreamNanos: Int64
    /// A hedge was sent for this request.
    public var hedged = false
    /// The node's own gzip bytes for `body`, when it sent gzip (`upstreams[].compression`):
    /// passed on to a client that accepts gzip when nothing was spliced into the answer.
    public var gzipped: ByteBuffer?
    /// The answering node's head at its last health check: a cache keeps an answer about the
    /// moving head only from a node that is not behind.
    public var nodeHead: UInt64?

    public init(status: HTTPResponseStatus, body: ByteBuffer, node: String, attempts: Int, upstreamNanos: Int64, gzipped: ByteBuffer? = nil) {
        self.status = status
        self.body = body
        self.node = node
        self.attempts = attempts
        self.upstreamNanos = upstreamNanos
        self.gzipped = gzipped
    }
}

/// Why a pool could not produce an answer, mapped by the data plane to 503, 504 or 502.
public enum UpstreamFailure: Error, Equatable {
    /// No node could be reached (503).
    case unavailable(network: String)
    /// The node did not answer within the deadline (504).
    case timeout(network: String, node: String)
    /// Nodes answered, but with errors, after retries (502).
    case badGateway(network: String, detail: String)
}

/// Why a node's compressed answer was not used; each is a 502 and counted.
public enum UndecodableAnswer: String, Sendable, Equatable {
    /// It inflates past the network's `max_response_bytes` (a zip bomb, or just too big).
    case tooLarge = "too_large"
    case corrupt = "corrupt"
    /// A coding Tollgate did not ask for (only gzip is asked for).
    case unsupportedCoding = "unsupported_coding"
}

/// Hears a pool's answer to one request. An object rather than a closure: the connection
/// waiting for the answer is one already, so the hot path allocates nothing to be called back.
public protocol UpstreamResponder: AnyObject {
    /// Runs once per request, on the pool's event loop.
    func upstreamAnswered(_ result: consuming Result<UpstreamResponse, UpstreamFailure>)
}

/// The pool of one network on one event loop.
///
/// A protocol so that health checks, circuit breaking and smarter balancing can replace the
/// round-robin implementation without touching the data plane.
public protocol UpstreamPool: AnyObject {
    var network: String { get }
    /// Sends `request` to a node and tells `responder` on the pool's event loop, exactly once.
    /// A callback rather than a future: the hot path allocates no future chain per request.
    /// Consuming: the request moves into the pool's own record of it rather than being copied.
    func execute(_ request: consuming UpstreamRequest, responder: any UpstreamResponder)
    /// Closes idle connections (shutdown).
    func close()
    /// The network's chain state (head, finality, epoch), when the pool tracks it.
    var chain: ChainTracker? { get }
    /// Whether the node named `name` (`host:port`) has passed `checks` health checks in a row
    /// fresh (healthy, on the chain, within the allowed lag) and is not cordoned: the nodes
    /// subscriptions move to. True when the pool does not know.
    func isFresh(node name: String, checks: Int) -> Bool
}

extension UpstreamPool {
    public var chain: ChainTracker? { nil }
    public func isFresh(node name: String, checks: Int) -> Bool { true }

    /// The same, answering a closure (off the hot path: lookups the data plane makes itself).
    public func execute(_ request: UpstreamRequest, completion: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void) {
        execute(request, responder: CallbackResponder(completion))
    }
}

private final class CallbackResponder: UpstreamResponder {
    let completion: (Result<UpstreamResponse, UpstreamFailure>) -> Void
    init(_ completion: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void) { self.completion = completion }
    func upstreamAnswered(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) { completion(result) }
}
