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
}
