import CoreMetrics
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import TollgateCore
@testable import TollgateDataPlane
import TollgateUpstream

/// An upstream pool that answers at once from a closure and records what it was sent.
final class MockPool: UpstreamPool, @unchecked Sendable {
    let network = "ethereum"
    let eventLoop: any EventLoop
    var sent: [String] = []
    var answer: (String) -> Result<UpstreamResponse, UpstreamFailure>
    /// When set, answers wait in `held` until a test releases them.
    var hold = false
    var held: [() -> Void] = []

    init(eventLoop: any EventLoop, answer: @escaping (String) -> Result<UpstreamResponse, UpstreamFailure>) {
        self.eventLoop = eventLoop
        self.answer = answer
    }

    func execute(_ request: UpstreamRequest, responder: any UpstreamResponder) {
        let body = String(buffer: request.body)
        sent.append(body)
        let result = answer(body)
        if hold { held.append { responder.upstreamAnswered(result) } } else { responder.upstreamAnswered(result) }
    }

    func close() {}
}

/// The gateway's handlers on one `EmbeddedChannel`. Built and driven synchronously: an
/// `EmbeddedEventLoop` must stay on the thread that made it.
struct HandlerFixture {
    let channel = EmbeddedChannel()
    let pool: MockPool
    let key: String
    /// The channel's loop's state (its pools and networks, which a reload replaces).
    let loopState: LoopState

    /// A key directory that already holds the test key, so the handler never leaves the loop.
    static func warmDirectory() async throws -> (KeyDirectory, String) {
        let key = APIKeyToken.generate()
        let store = InMemoryKeyStore()
        let plan = Plan(name: "p", cuPerSecond: 10_000, requestsPerSecond: 10_000, monthlyCU: nil, maxBodyBytes: 1000, maxBatch: 10,
            methods: MethodPolicy(deny: ["debug_*"]))
        let record = try await store.create(APIKeyRecord(prefix: APIKeyToken.prefix(of: key), hash: KeyHash(key: key), plan: "p", createdAt: 0))
        let directory = KeyDirectory(store: store, ledger: QuotaLedger(store: nil), plans: ["p": plan], clock: { 1 })
        _ = await directory.resolve(record.hash)
        return (directory, key)
    }

    init(directory: KeyDirectory, key: String) throws {
        self.key = key
        let loop = channel.embeddedEventLoop
        pool = MockPool(eventLoop: loop) { body in
            .success(UpstreamResponse(status: .ok, body: ByteBuffer(string: "node:" + body), node: "mock", attempts: 1, upstreamNanos: 1000))
        }
        loopState = LoopState(eventLoop: loop, pools: ["ethereum": pool])
        let gateway = Gateway(
            settings: GatewaySettings(maxBodyBytes: 4096), networks: ["ethereum"], directory: directory,
            computeUnits: .standard, metrics: GatewayMetrics(factory: NOOPMetricsHandler.instance, knownMethods: []),
            telemetry: DiscardingTelemetrySink(), logger: Logger(label: "test"),
            loops: LoopStates([loopState]), readiness: { true }, clock: { 1 })
        try GatewayChannel.configure(channel.pipeline.syncOperations, gateway: gateway)
    }

    func request(_ body: String, extra: String = "") -> String {
        "POST /v1/ethereum/\(key) HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(extra)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// Everything the handler wrote, as text.
    func written() throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }
}

@Suite struct GatewayHandlerTests {
    func withFixture(_ body: (HandlerFixture) throws -> Void) async throws {
        let (directory, key) = try await HandlerFixture.warmDirectory()
        try Self.run(directory, key, body)
    }

    /// Synchronous from channel creation to the last read.
    private static func run(_ directory: KeyDirectory, _ key: String, _ body: (HandlerFixture) throws -> Void) throws {
        try body(HandlerFixture(directory: directory, key: key))
    }

    @Test func forwardsBodyUnchangedAndAnswersWithHeaders() async throws {
        try await withFixture { f in
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0x1"},  "latest"]}"#
            try f.channel.writeInbound(ByteBuffer(string: f.request(body, extra: "X-Request-ID: abc\r\n")))
            let out = try f.written()
            #expect(f.pool.sent == [body])
            #expect(out.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(out.contains("X-Request-ID: abc\r\n"))
            #expect(out.contains("RateLimit-Limit: 10000\r\n"))
            #expect(out.hasSuffix("\r\n\r\nnode:" + body))
        }
    }

    /// A keep-alive connection remembers its network's pool (`NetworkMemo`) only until a reload
    /// replaces the loop's pools or networks: its next request goes to the new pool, or is
    /// refused once the network is no longer served.
    @Test func aConnectionFollowsAReloadOfItsNetworksPool() async throws {
        try await withFixture { f in
            let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
            for _ in 0..<2 { try f.channel.writeInbound(ByteBuffer(string: f.request(body))) }
            #expect(f.pool.sent.count == 2)
            #expect(try f.written().components(separatedBy: "HTTP/1.1 200 OK").count == 3)
            let replacement = MockPool(eventLoop: f.channel.embeddedEventLoop) { body in
                .success(UpstreamResponse(status: .ok, body: ByteBuffer(string: "new:" + body), node: "new", attempts: 1, upstreamNanos: 1000))
            }
            f.loopState.pools = ["ethereum": replacement]
            f.loopState.networks = ["ethereum"]
            try f.channel.writeInbound(ByteBuffer(string: f.request(body)))
            #expect(f.pool.sent.count == 2 && replacement.sent == [body])
            #expect(try f.written().hasSuffix("new:" + body))
            f.loopState.pools = [:]
            f.loopState.networks = []
            try f.channel.writeInbound(ByteBuffer(string: f.request(body)))
            let refused = try f.written()
            #expect(refused.hasPrefix("HTTP/1.1 404 "), "\(refused)")
            #expect(refused.contains("unknown network 'ethereum'"))
            #expect(replacement.sent.count == 1)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withFixture { f in
            let first = #"{"jsonrpc":"2.0","id":1,"method":"a"}"#
            let second = #"{"jsonrpc":"2.0","id":2,"method":"b"}"#
            try f.channel.writeInbound(ByteBuffer(string: f.request(first) + f.request(second)))
            let out = try f.written()
            #expect(f.pool.sent == [first, second])
            let firstAt = try #require(out.range(of: "node:" + first))
            let secondAt = try #require(out.range(of: "node:" + second))
            #expect(firstAt.lowerBound < secondAt.lowerBound)
        }
    }

    /// The handler asks for each next read itself when a read ends (NIO's `autoRead` then sends
    /// none from the pipeline's tail) and keeps the end of the read to itself; while 16
    /// pipelined requests wait it asks for none, and once they are served it asks again.
    @Test func aReadsEndAsksForTheNextReadUnlessReadsAreHeldBack() async throws {
        try await withFixture { f in
            let reads = ReadCounter()
            let spy = ReadCompleteSpy()
            try f.channel.pipeline.syncOperations.addHandler(reads, position: .first)
            try f.channel.pipeline.syncOperations.addHandler(spy)
            let call = #"{"jsonrpc":"2.0","id":1,"method":"eth_call"}"#
            try f.channel.writeInbound(ByteBuffer(string: f.request(call)))
            #expect(reads.reads == 1)
            #expect(spy.completes == 0)
            // One in flight and 17 queued behind it: reads are held back.
            f.pool.hold = true
            try f.channel.writeInbound(ByteBuffer(string: String(repeating: f.request(call), count: 18)))
            #expect(f.pool.sent.count == 2)
            #expect(reads.reads == 1)
            f.channel.pipeline.fireChannelReadComplete()
            #expect(reads.reads == 1)
            while !f.pool.held.isEmpty { f.pool.held.removeFirst()() }
            #expect(f.pool.sent.count == 19)
            f.channel.pipeline.fireChannelReadComplete()
            #expect(reads.reads == 2)
            #expect(spy.completes == 0)
        }
    }

    @Test func requestsPipelinedDuringAnUpstreamWaitAreServedInOrderIntact() async throws {
        try await withFixture { f in
            f.pool.hold = true
            let bodies = (1...3).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"eth_call","params":["\#(String(repeating: "x", count: $0 * 7))"]}"# }
            try f.channel.writeInbound(ByteBuffer(string: f.request(bodies[0])))
            #expect(f.pool.sent.count == 1)
            // The second arrives whole, the third in two pieces, while the first waits upstream.
            let third = f.request(bodies[2])
            let cut = third.index(third.startIndex, offsetBy: third.count - 10)
            try f.channel.writeInbound(ByteBuffer(string: f.request(bodies[1]) + third[..<cut]))
            try f.channel.writeInbound(ByteBuffer(string: String(third[cut...])))
            #expect(f.pool.sent.count == 1)
            for expected in 1...3 {
                f.pool.held.removeFirst()()
                #expect(f.pool.sent.count == min(3, expected + 1))
            }
            #expect(f.pool.sent == bodies)
            let out = try f.written()
            let positions = try bodies.map { try #require(out.range(of: "node:" + $0)).lowerBound }
            #expect(positions == positions.sorted())
        }
    }

    @Test func deniedBatchItemsNeverReachThePool() async throws {
        try await withFixture { f in
            let body = #"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"debug_x"}]"#
            f.pool.answer = { _ in .success(UpstreamResponse(status: .ok, body: ByteBuffer(string: #"[{"jsonrpc":"2.0","id":1,"result":"0x1"}]"#), node: "mock", attempts: 1, upstreamNanos: 0)) }
            try f.channel.writeInbound(ByteBuffer(string: f.request(body)))
            let out = try f.written()
            #expect(f.pool.sent == [#"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]"#])
            #expect(out.hasSuffix(#"[{"jsonrpc":"2.0","id":1,"result":"0x1"},{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"method 'debug_x' is not allowed on this plan"}}]"#))
        }
    }

    @Test func upstreamFailuresMapToStatuses() async throws {
        try await withFixture { f in
            for (failure, status) in [(UpstreamFailure.unavailable(network: "ethereum"), "503"), (.timeout(network: "ethereum", node: "n"), "504"), (.badGateway(network: "ethereum", detail: "x"), "502")] {
                f.pool.answer = { _ in .failure(failure) }
                try f.channel.writeInbound(ByteBuffer(string: f.request(#"{"jsonrpc":"2.0","id":"z","method":"eth_call"}"#)))
                let out = try f.written()
                #expect(out.hasPrefix("HTTP/1.1 \(status)"))
                #expect(out.contains(#"{"jsonrpc":"2.0","id":"z","error":{"code":-32603"#))
            }
        }
    }

    @Test func oversizedBodyIsRefusedAndTheConnectionClosed() async throws {
        try await withFixture { f in
            try f.channel.writeInbound(ByteBuffer(string: f.request(String(repeating: "x", count: 5000))))
            let out = try f.written()
            #expect(out.hasPrefix("HTTP/1.1 413"))
            #expect(out.contains("Connection: close"))
            #expect(f.pool.sent.isEmpty)
            #expect(!f.channel.isActive)
        }
    }

    @Test func parserErrorsGetAJSONRPCBodyAndClose() async throws {
        try await withFixture { f in
            _ = try? f.channel.writeInbound(ByteBuffer(string: "NOT HTTP AT ALL\r\n\r\n"))
            let out = try f.written()
            #expect(out.hasPrefix("HTTP/1.1 400"))
            #expect(out.contains(#""code":-32600"#))
            #expect(!f.channel.isActive)
        }
    }
}
