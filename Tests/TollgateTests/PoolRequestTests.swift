import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import TollgateUpstream

/// A `PoolRequest` is recycled for a later request only once nothing else holds it or its first
/// exchange (`ResilientPool.takeSpare`): these check that guard and what a recycled request
/// keeps, without sockets.
@Suite struct PoolRequestTests {
    final class Responder: UpstreamResponder {
        func upstreamAnswered(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) {}
    }

    static func run() throws -> PoolRequest {
        let node = try #require(UpstreamNode(url: "http://127.0.0.1:1"))
        let pool = ResilientPool(
            network: UpstreamNetwork(name: "ethereum", nodes: [node]), eventLoop: EmbeddedEventLoop(), tls: nil,
            health: NodeHealthBoard(nodes: 1), logger: Logger(label: "test"))
        let machine = AttemptStateMachine(
            settings: .init(network: "ethereum", retryable: true, maxAttempts: 2, nodeCount: 1, requestTimeout: 1_000_000_000,
                attemptTimeout: 1_000_000_000, hedgeDelay: nil),
            now: 0)
        return PoolRequest(
            pool: pool, request: UpstreamRequest(body: ByteBuffer(string: "{}"), requestID: "req-1", traceparent: "00-abc-def-01"),
            machine: machine, responder: Responder())
    }

    /// The trace context lives in a box copies share until one of them writes (a hedge sets its
    /// own span's traceparent): each copy still reads as a value.
    @Test func copiesOfARequestKeepTheirOwnTraceContext() {
        final class Observer: UpstreamAttemptObserver {
            func attemptStarted(node: String) -> (any UpstreamAttemptSpan)? { nil }
        }
        var original = UpstreamRequest(body: ByteBuffer(string: "{}"), requestID: "r", traceparent: "00-a-01", tracestate: "v=1")
        var copy = original
        copy.traceparent = "00-b-01"
        copy.observer = Observer()
        #expect(original.traceparent == "00-a-01" && original.tracestate == "v=1" && original.observer == nil)
        #expect(copy.traceparent == "00-b-01" && copy.tracestate == "v=1" && copy.observer != nil)
        original.tracestate = nil
        #expect(original.tracestate == nil && copy.tracestate == "v=1")
        copy.clearTracing()
        #expect(copy.traceparent == nil && copy.tracestate == nil && copy.observer == nil && original.traceparent == "00-a-01")
        var untraced = UpstreamRequest(body: ByteBuffer(), requestID: "u")
        untraced.traceparent = nil
        #expect(untraced.traceparent == nil)
        untraced.tracestate = "v=2"
        #expect(untraced.tracestate == "v=2" && untraced.traceparent == nil)
    }

    @Test func aRequestIsFreeOnlyWhileNothingElseHoldsItsFirstExchange() throws {
        let run = try Self.run()
        #expect(run.isFree)
        // A connection's handler holding the first leg's exchange (a leg in flight, or a
        // cancelled one not yet reported back).
        var held: NodeConnections.Exchange? = run.exchange(for: .first, timeout: .seconds(1))
        #expect(held === run.primary)
        #expect(!run.isFree)
        held = nil
        #expect(run.isFree)
    }

    @Test func aRequestWithALegInItsSlotsIsNotFree() throws {
        let run = try Self.run()
        run.legs[.first] = PoolRequest.LegSlot(node: 0, start: 0, exchange: run.exchange(for: .first, timeout: .seconds(1)), span: nil)
        #expect(!run.isFree)
        run.legs[.first] = nil
        #expect(run.isFree)
    }

    @Test func onlyTheFirstLegSendsTheRequestItselfLaterOnesACopy() throws {
        let run = try Self.run()
        let first = run.exchange(for: .first, timeout: .seconds(1))
        let hedge = run.exchange(for: .second, timeout: .seconds(2))
        #expect(first === run.primary)
        #expect(hedge !== run.primary)
        #expect(hedge.tag == AttemptStateMachine.Leg.second.rawValue && hedge.timeout == .seconds(2))
        #expect(hedge.request.requestID == "req-1" && String(buffer: hedge.request.body) == "{}")
        // A leg's own trace context does not reach the other legs.
        hedge.request.traceparent = "00-hedge-01"
        #expect(run.request.traceparent == "00-abc-def-01")
    }

    @Test func aRecycledRequestLetsGoOfTheClientsBodyAndTrace() throws {
        let run = try Self.run()
        run.release()
        #expect(run.request.body.readableBytes == 0)
        #expect(run.request.traceparent == nil && run.request.observer == nil)
        // The next request's values, in the same objects.
        let primary = run.primary
        run.reuse(request: UpstreamRequest(body: ByteBuffer(string: "[1]"), requestID: "req-2"), machine: run.machine, responder: Responder())
        #expect(run.primary === primary)
        #expect(run.request.requestID == "req-2" && String(buffer: run.request.body) == "[1]")
        #expect(run.exchange(for: .first, timeout: .seconds(1)) === primary)
    }
}
