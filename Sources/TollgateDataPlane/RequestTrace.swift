import NIOHTTP1
import TollgateHTTP1
import Tracing
import TollgateUpstream

/// Tracing as the data plane sees it. Off (`tracer == nil`) costs a request nothing but
/// passing the client's `traceparent` on to the node.
public struct GatewayTracing: Sendable {
    public var tracer: (any Tracer)?
    /// Share of requests without a sampling decision of their own (no inbound `traceparent`)
    /// that are traced; a client's decision (the sampled flag) is always followed.
    public var sampleRatio: Double

    public init(tracer: (any Tracer)?, sampleRatio: Double) {
        self.tracer = tracer
        self.sampleRatio = sampleRatio
    }

    public static let off = GatewayTracing(tracer: nil, sampleRatio: 0)
}

/// The spans of one sampled request: the server span, child spans for auth and limits made
/// after the fact from recorded instants (so nothing is allocated for them until the request
/// is known to be traced), and one client span per upstream attempt.
final class RequestTrace: UpstreamAttemptObserver {
    let tracer: any Tracer
    let server: any Span

    init(tracer: any Tracer, head: HTTP1RequestHead, start: DefaultTracerClock.Timestamp, requestID: String, network: String) {
        self.tracer = tracer
        var context = ServiceContext.topLevel
        tracer.extract(head, into: &context, using: RequestHeadExtractor())
        server = tracer.startSpan("jsonrpc", context: context, ofKind: .server, at: start)
        server.attributes["tollgate.request_id"] = requestID
        server.attributes["tollgate.network"] = network
    }

    /// A finished child span over `start...end`.
    func record(_ name: String, start: DefaultTracerClock.Timestamp, end: DefaultTracerClock.Timestamp, attributes: [(String, String)] = []) {
        let span = tracer.startSpan(name, context: server.context, ofKind: .internal, at: start)
        for (key, value) in attributes { span.attributes[key] = value }
        span.end(at: end)
    }

    func attemptStarted(node: String) -> (any UpstreamAttemptSpan)? {
        let span = tracer.startSpan("upstream \(node)", context: server.context, ofKind: .client)
        span.attributes["tollgate.upstream"] = node
        var carrier: [String: String] = [:]
        tracer.inject(span.context, into: &carrier, using: DictionaryInjector())
        return AttemptSpan(span: span, traceparent: carrier["traceparent"])
    }

    /// Ends the server span with what the request came to.
    func finish(method: String, status: Int, keyPrefix: String?, computeUnits: Int, rpcErrorCode: Int?) {
        server.operationName = "jsonrpc \(method)"
        server.attributes["rpc.system"] = "jsonrpc"
        server.attributes["rpc.method"] = method
        server.attributes["http.response.status_code"] = status
        server.attributes["tollgate.compute_units"] = computeUnits
        if let keyPrefix { server.attributes["tollgate.key_prefix"] = keyPrefix }
        if let rpcErrorCode { server.attributes["rpc.jsonrpc.error_code"] = rpcErrorCode }
        if status >= 500 { server.setStatus(SpanStatus(code: .error, message: "HTTP \(status)")) }
        server.end()
    }

    /// Whether a request is traced: the client's sampled flag when it sent a valid
    /// `traceparent`, else a draw against `ratio` (`draw` is uniform in 0..<1).
    static func sampled(traceparent: String?, ratio: Double, draw: Double) -> Bool {
        if let traceparent, let flag = TraceParent.sampledFlag(traceparent) { return flag }
        return draw < ratio
    }
}

final class AttemptSpan: UpstreamAttemptSpan {
    let span: any Span
    let traceparent: String?

    init(span: any Span, traceparent: String?) {
        self.span = span
        self.traceparent = traceparent
    }

    func finished(outcome: String) {
        span.attributes["tollgate.outcome"] = outcome
        if outcome != "ok" { span.setStatus(SpanStatus(code: .error, message: outcome)) }
        span.end()
    }
}

/// Just enough of W3C Trace Context to read the sampled flag without a tracer.
enum TraceParent {
    /// The sampled flag of a well-formed version-00 `traceparent`, else nil.
    static func sampledFlag(_ value: String) -> Bool? {
        let bytes = Array(value.utf8)
        guard bytes.count >= 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
            bytes[0] != UInt8(ascii: "f") || bytes[1] != UInt8(ascii: "f")
        else { return nil }
        func hex(_ range: Range<Int>) -> Bool { bytes[range].allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) } }
        guard hex(0..<2), hex(3..<35), hex(36..<52), hex(53..<55),
            bytes[3..<35].contains(where: { $0 != 48 }), bytes[36..<52].contains(where: { $0 != 48 })
        else { return nil }
        // Version 00 is exactly 55 characters; later versions may append fields.
        if bytes[0] == 48, bytes[1] == 48, bytes.count != 55 { return nil }
        let flags = bytes[54]
        return flags == 49 || flags == 51 || flags == 53 || flags == 55 || flags == 57 || flags == 98 || flags == 100 || flags == 102
    }
}

/// W3C trace context from a request head: the only two headers a propagator asks for.
struct RequestHeadExtractor: Extractor {
    func extract(key: String, from carrier: HTTP1RequestHead) -> String? {
        switch key.lowercased() {
        case "traceparent": carrier.string(carrier.traceparent)
        case "tracestate": carrier.string(carrier.tracestate)
        default: nil
        }
    }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
