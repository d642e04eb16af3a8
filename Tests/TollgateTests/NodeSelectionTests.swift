import NIOCore
import Testing
import TollgateCore
import TollgateUpstream

/// A deterministic generator for selection tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct NodeSelectionTests {
    @Test func eligibilityHonoursChainHealthLagCircuitCapacityAndMethods() {
        let archive = MethodPolicy(allow: ["*"])
        let noTraces = MethodPolicy(deny: ["debug_*", "trace_*"])
        let nodes = [
            NodeView(head: 1000, methods: noTraces),                 // 0 fine
            NodeView(chainMatches: false, head: 1000),               // 1 wrong chain
            NodeView(healthy: false, head: 1000),                    // 2 failed its health check
            NodeView(head: 990),                                     // 3 ten blocks behind
            NodeView(head: 1000, circuitAdmits: false),              // 4 circuit open
            NodeView(head: 1000, inFlight: 4, maxInFlight: 4),       // 5 full
            NodeView(head: 998, methods: archive),                   // 6 archive, 2 behind
        ]
        #expect(NodeSelection.poolHead(nodes) == 1000)
        #expect(NodeSelection.eligible(nodes, method: "eth_call", maxLag: 5) == [0, 6])
        #expect(NodeSelection.eligible(nodes, method: "debug_traceTransaction", maxLag: 5) == [6])
        #expect(NodeSelection.eligible(nodes, method: "eth_call", maxLag: 10) == [0, 3, 6])
        #expect(NodeSelection.eligible(nodes, method: "eth_call", maxLag: 5, excluding: [0]) == [6])
    }

    @Test func readsAboutTheHeadGoToNodesAtTheHeadWhileOneQualifies() {
        var nodes = [NodeView(head: 1000), NodeView(head: 997), NodeView(head: 1000, circuitAdmits: false)]
        #expect(NodeSelection.eligible(nodes, methods: .one("eth_call"), maxLag: 10) == [0, 1])
        #expect(NodeSelection.eligible(nodes, methods: .one("eth_call"), maxLag: 10, atHead: true) == [0])
        // The node at the head cannot take it: the one a few blocks behind is better than none.
        nodes[0].healthy = false
        #expect(NodeSelection.eligible(nodes, methods: .one("eth_call"), maxLag: 10, atHead: true) == [1])
        #expect(NodeSelection.eligible(nodes, methods: .one("eth_call"), maxLag: 10, excluding: [1], atHead: true).isEmpty)
    }

    @Test func fallbacksServeOnlyWhenNoPrimaryCan() {
        var nodes = [NodeView(role: .primary), NodeView(role: .fallback), NodeView(role: .fallback)]
        #expect(NodeSelection.eligible(nodes, method: nil, maxLag: 0) == [0])
        nodes[0].healthy = false
        #expect(NodeSelection.eligible(nodes, method: nil, maxLag: 0) == [1, 2])
        nodes[1].healthy = false
        nodes[2].healthy = false
        #expect(NodeSelection.eligible(nodes, method: nil, maxLag: 0).isEmpty)
    }

    @Test func aCordonedNodeIsNeverChosenHealthyOrNot() {
        var nodes = [NodeView(role: .primary), NodeView(role: .fallback)]
        nodes[0].cordoned = true
        // The healthy primary is out of rotation, so the fallback serves.
        #expect(NodeSelection.eligible(nodes, method: nil, maxLag: 0) == [1])
        nodes[1].cordoned = true
        #expect(NodeSelection.eligible(nodes, method: nil, maxLag: 0).isEmpty)
    }

    @Test func powerOfTwoChoicesRoutesAwayFromASlowNode() {
        var nodes = (0..<3).map { _ in NodeView(latency: 1_000_000) }
        nodes[2].latency = 50_000_000  // fifty times slower
        var generator = SplitMix(state: 42)
        var picks = [0, 0, 0]
        for _ in 0..<3000 {
            let chosen = NodeSelection.choose([0, 1, 2], nodes: nodes, using: &generator)!
            picks[chosen] += 1
        }
        // The slow node wins only when it is not drawn against a faster one: never, with two distinct draws.
        #expect(picks[2] == 0)
        #expect(picks[0] > 1200 && picks[1] > 1200)
    }

    @Test func weightAndLoadShiftTheScore() {
        let light = NodeView(weight: 1, inFlight: 0, latency: 1_000_000)
        let heavy = NodeView(weight: 1, inFlight: 9, latency: 1_000_000)
        let big = NodeView(weight: 10, inFlight: 9, latency: 1_000_000)
        #expect(NodeSelection.score(light) < NodeSelection.score(heavy))
        #expect(NodeSelection.score(big) == NodeSelection.score(light))
        var generator = SplitMix(state: 1)
        #expect(NodeSelection.choose([], nodes: [], using: &generator) == nil)
        #expect(NodeSelection.choose([3], nodes: [], using: &generator) == 3)
    }
}

@Suite struct UpstreamAnswerClassifierTests {
    @Test(arguments: [
        (200, #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#, true),
        (200, #"{"jsonrpc":"2.0","id":1,"error":{"code":3,"message":"execution reverted"}}"#, true),
        (200, #"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"invalid argument 0"}}"#, true),
        (200, #"[{"jsonrpc":"2.0","id":1,"result":"0x1"}]"#, true),
        (200, #"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"missing trie node 4f5a (path )"}}"#, false),
        (200, #"{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"header not found"}}"#, false),
        (200, "<html>bad gateway</html>", false), (200, #"{"jsonrpc":"2.0""#, false), (200, "", false),
        (502, #"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#, false), (429, "{}", false), (400, #"{"error":"bad"}"#, true),
    ])
    func classifies(status: Int, body: String, good: Bool) {
        let verdict = UpstreamAnswerClassifier.classify(status: status, body: ByteBuffer(string: body))
        #expect((verdict == .good) == good, "\(status) \(body) → \(verdict)")
        // The same inside a larger buffer (a slice: the scan must stay within the readable bytes).
        let prefix = "\"error\" missing trie node "
        var framed = ByteBuffer(string: prefix)
        framed.writeString(body)
        framed.writeString(" header not found \"error\"")
        let slice = framed.getSlice(at: prefix.utf8.count, length: body.utf8.count)!
        #expect(UpstreamAnswerClassifier.classify(status: status, body: slice) == verdict, "\(body) as a slice")
    }

    @Test func theScanFindsANeedleAtEitherEndAndNotPastIt() {
        let needle = Array(#""error""#.utf8)
        func found(_ text: String) -> Bool {
            Array(text.utf8).withUnsafeBytes { UpstreamAnswerClassifier.contains($0, needle, anchor: 2) }
        }
        #expect(found(#""error""#))
        #expect(found(#"xx"error""#))
        #expect(found(#""error"xx"#))
        #expect(!found(#""erro"#))
        #expect(!found(#"rror""#))
        #expect(!found(#""eRror""#))
        #expect(!found(""))
        #expect(found(String(repeating: "0xdeadbeef rr ", count: 10_000) + #""error""#))
        #expect(!found(String(repeating: "0xdeadbeef rr \"erro ", count: 10_000)))
        // A node-side message in a large answer is still found.
        var big = ByteBuffer(string: #"[{"jsonrpc":"2.0","id":1,"result":""#)
        big.writeString(String(repeating: "ab", count: 1 << 20))
        big.writeString(#""},{"jsonrpc":"2.0","id":2,"error":{"code":-32000,"message":"header not found"}}]"#)
        #expect(UpstreamAnswerClassifier.classify(status: 200, body: big) == .nodeFailure("header not found"))
    }
}
