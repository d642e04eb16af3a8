import Foundation
import Testing
import TollgateTestSupport

/// Replays every request/response pair of the Ethereum execution-apis suite through the
/// gateway: what the node says must reach the client byte for byte.
@Suite struct ConformanceTests {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/conformance/execution-apis/tests")
    }

    static func pairs() throws -> [(file: String, request: String, response: String)] {
        let files = try #require(FileManager.default.enumerator(atPath: root.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".io") }.sorted()
        var pairs: [(String, String, String)] = []
        for file in files {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            var request: String?
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(">> ") {
                    request = String(line.dropFirst(3))
                } else if line.hasPrefix("<< "), let pending = request {
                    pairs.append((file, pending, String(line.dropFirst(3))))
                    request = nil
                }
            }
        }
        return pairs
    }

    @Test func everyRecordedResponsePassesThroughUnchanged() async throws {
        let pairs = try Self.pairs()
        #expect(pairs.count >= 232, "conformance suite not found or incomplete at \(Self.root.path)")
        let node = try await FakeNode.start()
        for pair in pairs { node.record(request: pair.request, response: pair.response) }
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key(plan: "big")
        // One keep-alive connection for all of them, as a real client would.
        let client = try await TestHTTPClient.connect(port: harness.port)
        var mismatches = 0
        for pair in pairs {
            let response = try await client.request(path: "/v1/ethereum/\(key)", body: pair.request)
            if response.status != 200 || response.body != pair.response {
                mismatches += 1
                Issue.record("\(pair.file): status \(response.status), got \(response.body.prefix(160)) want \(pair.response.prefix(160))")
            }
        }
        #expect(mismatches == 0)
        // And the node got each request byte for byte.
        #expect(node.received.map(\.body) == pairs.map(\.request))
        await client.close()
        try await harness.stop()
        await node.stop()
    }

    /// The same with gzip both ways: the node compresses (asked by the gateway), the client
    /// asks for gzip. Every answer, inflated, is the recorded bytes; small ones come plain.
    @Test func withGzipBothWaysEveryAnswerInflatesToTheNodesBytes() async throws {
        let pairs = try Self.pairs()
        let node = try await FakeNode.start()
        node.setGzip(.whenAsked)
        for pair in pairs { node.record(request: pair.request, response: pair.response) }
        let yaml = GatewayHarness.defaultYAML.replacingOccurrences(of: "      - url: {NODE0}\n", with: "      - url: {NODE0}\n        compression: true\n")
        let harness = try await GatewayHarness.start(nodes: [node], yaml: yaml)
        let key = try await harness.key(plan: "big")
        let client = try await TestHTTPClient.connect(port: harness.port)
        var mismatches = 0
        var compressed = 0
        for pair in pairs {
            let response = try await client.request(path: "/v1/ethereum/\(key)",
                headers: [("Content-Type", "application/json"), ("Accept-Encoding", "gzip")], body: pair.request)
            var body = response.body
            if response.header("Content-Encoding") == "gzip" {
                compressed += 1
                body = (try? CompressionEndToEndTests.inflate(response)) ?? "<corrupt gzip>"
            }
            if response.status != 200 || body != pair.response {
                mismatches += 1
                Issue.record("\(pair.file): status \(response.status), got \(body.prefix(160)) want \(pair.response.prefix(160))")
            }
        }
        #expect(mismatches == 0)
        #expect(compressed == pairs.filter { $0.response.utf8.count >= 1024 }.count)
        #expect(compressed > 0)
        #expect(node.received.map(\.body) == pairs.map(\.request))
        await client.close()
        try await harness.stop()
        await node.stop()
    }

    /// The same with the response cache on, each request sent twice: a cached answer is the
    /// node's bytes again (the id spliced in is the same here). `eth_blockNumber` is left out:
    /// with the cache it is answered from the chain state, not from the recording.
    @Test func withTheCacheOnEveryAnswerIsStillTheNodesBytes() async throws {
        let pairs = try Self.pairs().filter { !$0.request.contains(#""method":"eth_blockNumber""#) }
        let node = try await FakeNode.start()
        for pair in pairs { node.record(request: pair.request, response: pair.response) }
        let harness = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.defaultYAML + "\ncache:\n  enabled: true\n")
        let key = try await harness.key(plan: "big")
        let client = try await TestHTTPClient.connect(port: harness.port)
        var mismatches = 0
        for pair in pairs {
            for _ in 0..<2 {
                let response = try await client.request(path: "/v1/ethereum/\(key)", body: pair.request)
                if response.status != 200 || response.body != pair.response {
                    mismatches += 1
                    Issue.record("\(pair.file): status \(response.status), got \(response.body.prefix(160)) want \(pair.response.prefix(160))")
                }
            }
        }
        #expect(mismatches == 0)
        // Some answers were cached (the node saw fewer than two of each), none was wrong.
        #expect(node.requestCount < 2 * pairs.count)
        await client.close()
        try await harness.stop()
        await node.stop()
    }
}
