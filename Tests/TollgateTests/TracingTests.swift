import Foundation
import InMemoryTracing
import Testing
@testable import TollgateApp
@testable import TollgateDataPlane
import TollgateTestSupport
import Tracing

@Suite(.serialized) struct TracingTests {
    static let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    @Test func theSampledFlagIsReadOnlyFromWellFormedTraceparents() {
        #expect(TraceParent.sampledFlag(Self.parent) == true)
        #expect(TraceParent.sampledFlag("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00") == false)
        #expect(TraceParent.sampledFlag("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03") == true)
        #expect(TraceParent.sampledFlag("00-00000000000000000000000000000000-b7ad6b7169203331-01") == nil)
        #expect(TraceParent.sampledFlag("00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01") == nil)
        #expect(TraceParent.sampledFlag("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == nil)
        #expect(TraceParent.sampledFlag("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01") == nil)
        #expect(TraceParent.sampledFlag("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra") == nil)
        #expect(TraceParent.sampledFlag("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra") == true)
        #expect(TraceParent.sampledFlag("garbage") == nil)
        // The client's decision wins; without one, the ratio decides.
        #expect(RequestTrace.sampled(traceparent: Self.parent, ratio: 0, draw: 0.5))
        #expect(!RequestTrace.sampled(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", ratio: 1, draw: 0))
        #expect(RequestTrace.sampled(traceparent: nil, ratio: 0.01, draw: 0.005))
        #expect(!RequestTrace.sampled(traceparent: nil, ratio: 0.01, draw: 0.5))
        #expect(!RequestTrace.sampled(traceparent: nil, ratio: 0, draw: 0))
    }

    static func base64(_ hex: String) -> String {
        let bytes = stride(from: 0, to: hex.count, by: 2).map { offset -> UInt8 in
            let start = hex.index(hex.startIndex, offsetBy: offset)
            return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
        }
        return Data(bytes).base64EncodedString()
    }

    static let yaml = GatewayHarness.oneNodeYAML

    static func start(node: FakeNode, yaml: String = TracingTests.yaml, tracer: (any Tracer)?) async throws -> GatewayHarness {
        try await GatewayHarness.start(nodes: [node], yaml: yaml, tracer: tracer)
    }

    @Test func aTracedRequestHasServerAuthLimitsAndAttemptSpans() async throws {
        let node = try await FakeNode.start()
        let tracer = InMemoryTracer()
        let gateway = try await Self.start(node: node, yaml: Self.yaml + "\ntracing:\n  sample_ratio: 1\n  enabled: true\n", tracer: tracer)
        do {
            let key = try await gateway.key()
            tracer.clearAll()
            let response = try await gateway.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, key: key)
            #expect(response.status == 200)
            // The server span ends just after the response is written.
            #expect(await eventually { tracer.finishedSpans.contains { $0.operationName == "jsonrpc eth_blockNumber" } })
            let spans = tracer.finishedSpans
            let server = try #require(spans.first { $0.operationName == "jsonrpc eth_blockNumber" })
            let byName = Dictionary(spans.map { ($0.operationName, $0) }, uniquingKeysWith: { a, _ in a })
            let auth = try #require(byName["auth"])
            let limits = try #require(byName["limits"])
            let attempt = try #require(spans.first { $0.operationName.hasPrefix("upstream ") })
            for child in [auth, limits, attempt] {
                #expect(child.parentSpanID == server.spanID)
                #expect(child.traceID == server.traceID)
            }
            #expect(server.attributes["rpc.method"]?.toSpanAttribute() == .string("eth_blockNumber"))
            #expect(limits.attributes["tollgate.admission"]?.toSpanAttribute() == .string("admitted"))
            #expect(attempt.attributes["tollgate.outcome"]?.toSpanAttribute() == .string("ok"))
            #expect(server.attributes["tollgate.request_id"]?.toSpanAttribute() == .string(response.header("X-Request-ID") ?? "?"))
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }

    @Test func withTracingOffTheClientsTraceContextReachesTheNodeUnchanged() async throws {
        let node = try await FakeNode.start()
        let gateway = try await Self.start(node: node, tracer: nil)
        do {
            let key = try await gateway.key()
            node.resetReceived()
            let response = try await gateway.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, key: key, headers: [
                ("Content-Type", "application/json"), ("traceparent", Self.parent), ("tracestate", "vendor=abc"),
            ])
            #expect(response.status == 200)
            let received = try #require(node.received.last)
            #expect(received.header("traceparent") == Self.parent)
            #expect(received.header("tracestate") == "vendor=abc")
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }

    /// The real exporter (swift-otel, OTLP/HTTP JSON) to a collector stand-in: the node gets a
    /// traceparent in the client's trace naming the gateway's attempt span, and the collector
    /// gets the spans.
    @Test func spansAreExportedOverOTLPAndTheNodeSeesTheGatewaysSpan() async throws {
        let node = try await FakeNode.start()
        let collector = try await FakeNode.start()
        let yaml = Self.yaml + """

            tracing:
              enabled: true
              sample_ratio: 0
              otlp_endpoint: \(collector.url)
              otlp_protocol: http/json
            """
        let gateway = try await Self.start(node: node, yaml: yaml, tracer: nil)
        do {
            let key = try await gateway.key()
            node.resetReceived()
            let response = try await gateway.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, key: key, headers: [
                ("Content-Type", "application/json"), ("traceparent", Self.parent),
            ])
            #expect(response.status == 200)
            let forwarded = try #require(node.received.last?.header("traceparent"))
            let parts = forwarded.split(separator: "-")
            #expect(parts.count == 4)
            #expect(parts[1] == "0af7651916cd43dd8448eb211c80319c")
            #expect(parts[2] != "b7ad6b7169203331")
            #expect(parts[3] == "01")
            // Unsampled by the client and a ratio of 0: not traced, passed through as it came.
            node.resetReceived()
            let unsampled = "00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
            _ = try await gateway.post(#"{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}"#, key: key, headers: [
                ("Content-Type", "application/json"), ("traceparent", unsampled),
            ])
            #expect(node.received.last?.header("traceparent") == unsampled)
            // Shutdown flushes the exporter.
            try await gateway.stop()
            let exported = collector.received.filter { $0.path.hasSuffix("/v1/traces") }.map(\.body).joined()
            // swift-otel's OTLP/JSON writes IDs as base64 bytes.
            #expect(exported.contains(Self.base64("0af7651916cd43dd8448eb211c80319c")))
            #expect(exported.contains(Self.base64(String(parts[2]))))
            #expect(exported.contains("jsonrpc eth_blockNumber"))
            #expect(!exported.contains(Self.base64("1af7651916cd43dd8448eb211c80319c")))
        } catch {
            Issue.record(error)
            try? await gateway.stop()
        }
        await node.stop()
        await collector.stop()
    }
}
