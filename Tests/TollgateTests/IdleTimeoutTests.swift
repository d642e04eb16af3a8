import Foundation
import Testing
import TollgateTestSupport

/// The gateway's own idle timeout: quiet connections go, busy ones stay.
@Suite struct IdleTimeoutTests {
    static let yaml = GatewayHarness.oneNodeYAML + """
        server:
          idle_timeout_ms: 500
        """

    static func closed(_ client: TestHTTPClient, within limit: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while !client.isClosed, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        return client.isClosed
    }

    @Test func aQuietConnectionIsClosedAndOneWaitingOnItsNodeIsNot() async throws {
        let node = try await FakeNode.start()
        let harness = try await GatewayHarness.start(nodes: [node], yaml: Self.yaml)
        let key = try await harness.key()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#

        let quiet = try await TestHTTPClient.connect(port: harness.port)
        #expect(try await quiet.request(path: "/v1/ethereum/\(key)", body: body).status == 200)
        let quietSince = ContinuousClock.now
        #expect(try await Self.closed(quiet, within: .seconds(5)))
        // Not before a whole timeout of silence (and within one and a half, plus scheduling).
        #expect(ContinuousClock.now - quietSince >= .milliseconds(490))

        // A request whose node takes three timeouts to answer keeps its connection.
        node.setMode(.slow(.milliseconds(1500)))
        let waiting = try await TestHTTPClient.connect(port: harness.port)
        let answer = try await waiting.request(path: "/v1/ethereum/\(key)", body: body)
        #expect(answer.status == 200)
        #expect(!waiting.isClosed)
        await waiting.close()
        try await harness.stop()
        await node.stop()
    }
}
