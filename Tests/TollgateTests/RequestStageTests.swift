import NIOCore
import Testing
import TollgateCore
@testable import TollgateDataPlane
import TollgateHTTP1
import TollgateJSONRPC

/// The pure stages of the request path on plain values: no channel, no loop, no clock.
@Suite struct RequestStageTests {
    static let plan = Plan(name: "free", cuPerSecond: 100, requestsPerSecond: 10, monthlyCU: nil, maxBodyBytes: 100, maxBatch: 2,
        methods: MethodPolicy(deny: ["eth_sendRawTransaction"]), networks: ["ethereum"])

    static func context(_ record: APIKeyRecord) -> KeyContext {
        KeyContext(record: record, plan: plan, cells: KeyCells(cu: RateLimitCell(), requests: RateLimitCell(), quota: QuotaCell(keyID: 1, used: 0), shared: nil))
    }

    static func record(status: APIKeyRecord.Status = .active, expiresAt: Int64? = nil, ips: [String] = [], origins: [String] = []) -> APIKeyRecord {
        APIKeyRecord(id: 1, prefix: "tg_x", hash: KeyHash(key: "k"), plan: "free", status: status, createdAt: 0, expiresAt: expiresAt,
            allowedIPs: ips, allowedOrigins: origins)
    }

    @Test func keyPolicyRefusesInTheOrderAClientCanActOn() {
        let ok = Self.context(Self.record())
        #expect(KeyPolicy.check(ok, network: "ethereum", client: nil, origin: nil, bodyBytes: 100, nowSeconds: 0) == nil)
        let cases: [(KeyContext, String, IPAddress?, String?, Int, String)] = [
            (Self.context(Self.record(status: .revoked)), "ethereum", nil, nil, 10, "API key revoked"),
            (Self.context(Self.record(expiresAt: 50)), "ethereum", nil, nil, 10, "API key expired"),
            (ok, "base", nil, nil, 10, "network 'base' not allowed for this key"),
            (Self.context(Self.record(ips: ["10.0.0.0/8"])), "ethereum", IPAddress("192.168.1.1"), nil, 10, "client address not allowed for this key"),
            (Self.context(Self.record(origins: ["https://app.example"])), "ethereum", nil, "https://evil.example", 10, "origin not allowed for this key"),
            (ok, "ethereum", nil, nil, 101, "body of 101 bytes exceeds the plan's 100"),
        ]
        for (context, network, client, origin, bytes, message) in cases {
            let refusal = KeyPolicy.check(context, network: network, client: client, origin: origin, bodyBytes: bytes, nowSeconds: 100)
            #expect(refusal?.error.message == message)
            #expect(refusal?.status == (bytes > 100 ? .payloadTooLarge : .forbidden))
        }
        #expect(KeyPolicy.check(batchOf: 3, isBatch: true, plan: Self.plan)?.status == .payloadTooLarge)
        #expect(KeyPolicy.check(batchOf: 3, isBatch: false, plan: Self.plan) == nil)
    }

    @Test func aBatchPlanForwardsWhatThePlanAllowsAndAnswersTheRestInPlace() throws {
        let body = ByteBuffer(string: #"[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["0x"]},{"id":3}]"#)
        guard case .success(let envelope) = RPCEnvelopeReader.read(body) else { Issue.record("envelope"); return }
        let context = Self.context(Self.record())
        let plan = BatchPlan(envelope, body: body, permits: { context.permits(method: $0) }, cost: { $0 == "eth_call" ? 26 : 10 }, label: { $0 })
        #expect(plan.isBatch && plan.forwardCount == 1 && plan.cost == 26 && plan.methodLabel == "batch")
        #expect(plan.anyDenied)
        #expect(String(decoding: plan.refused, as: UTF8.self).contains(#""id":2"#))
        #expect(String(decoding: plan.refused, as: UTF8.self).contains(#""id":3"#))
        #expect(String(buffer: plan.upstreamBody(body, allocator: ByteBufferAllocator())) == #"[{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[]}]"#)
        #expect(!plan.containsWrite(["eth_sendRawTransaction"]))

        let single = ByteBuffer(string: #"{"jsonrpc":"2.0","id":"a","method":"eth_sendRawTransaction","params":["0x"]}"#)
        guard case .success(let one) = RPCEnvelopeReader.read(single) else { Issue.record("single"); return }
        let denied = BatchPlan(one, body: single, permits: { context.permits(method: $0) }, cost: { _ in 10 }, label: { $0 })
        #expect(denied.forwardCount == 0)
        guard case .failure(let refusal) = denied.answerHere(envelope: one, body: single, allocator: ByteBufferAllocator()) else {
            Issue.record("a single denied call is refused"); return
        }
        #expect(refusal.status == .forbidden && refusal.error.code == RPCError.methodNotFound)
    }

    @Test func intakeRoutesAndRefusesBeforeAnyKeyIsLookedUp() throws {
        func head(_ text: String) throws -> HTTP1RequestHead {
            var parser = HTTP1RequestParser()
            var buffer = ByteBuffer(string: text)
            guard case .head(let head)? = try parser.next(&buffer) else { throw CancellationError() }
            return head
        }
        let loopState: Readiness = true
        func decide(_ text: String) throws -> (Intake.Decision, RequestFacts) {
            var facts = RequestFacts()
            let decision = Intake.decide(try head(text), networks: ["ethereum"], readiness: { loopState }, facts: &facts, allocator: ByteBufferAllocator())
            return (decision, facts)
        }
        guard case (.rpc(let target), let facts) = try decide("POST /v1/ethereum/tg_key HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") else {
            Issue.record("rpc"); return
        }
        #expect(target.network == "ethereum" && target.pathKey != nil && facts.network == "ethereum")
        guard case (.refuse(let unknown), let unknownFacts) = try decide("POST /v1/base HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n") else {
            Issue.record("unknown network"); return
        }
        #expect(unknown.status == .notFound && unknownFacts.network == "unknown")
        guard case (.refuse(let get), _) = try decide("GET /v1/ethereum HTTP/1.1\r\nHost: x\r\n\r\n") else { Issue.record("GET"); return }
        #expect(get.status == .methodNotAllowed && get.allow)
        guard case (.preflight, _) = try decide("OPTIONS /v1/ethereum HTTP/1.1\r\nHost: x\r\n\r\n") else { Issue.record("OPTIONS"); return }
        guard case (.answer(let health), _) = try decide("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") else { Issue.record("healthz"); return }
        #expect(health.status == .ok)
        let textPlain = try head("POST /v1/ethereum HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
        #expect(Intake.contentTypeRefusal(textPlain)?.status == .unsupportedMediaType)
        let json = try head("POST /v1/ethereum HTTP/1.1\r\nHost: x\r\nContent-Type: Application/JSON; charset=utf-8\r\nContent-Length: 0\r\n\r\n")
        #expect(Intake.contentTypeRefusal(json) == nil)
    }
}
