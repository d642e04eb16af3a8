import Foundation
import Testing
import TollgateTestSupport

@Suite struct AccessLogTests {
    @Test func everyRequestGetsOneJSONLineWithoutTheKey() async throws {
        let node = try await FakeNode.start()
        let gateway = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.oneNodeYAML + """
            telemetry:
              access_log: {DIR}/access.log
            """)
        let path = gateway.directory + "/access.log"
        do {
            let key = try await gateway.key()
            var ids: [String] = []
            for index in 0..<5 {
                let response = try await gateway.post(#"{"jsonrpc":"2.0","id":\#(index),"method":"eth_blockNumber"}"#, key: key)
                ids.append(try #require(response.header("X-Request-ID")))
            }
            let refused = try await gateway.post(#"{"jsonrpc":"2.0","id":9,"method":"eth_blockNumber"}"#, key: "tg_" + String(repeating: "x", count: 43))
            #expect(refused.status == 401)
            ids.append(try #require(refused.header("X-Request-ID")))
            func lines() throws -> [[String: Any]] {
                let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
                return text.split(separator: "\n").compactMap { String($0).jsonObject }
            }
            #expect(await eventually { try lines().count >= 6 })
            // Lines come in chunks per event loop: complete, each once, not globally ordered.
            let logged = try lines()
            #expect(logged.compactMap { $0["request_id"] as? String }.sorted() == ids.sorted())
            let first = try #require(logged.first { $0["request_id"] as? String == ids[0] })
            #expect(first["network"] as? String == "ethereum")
            #expect(first["method"] as? String == "eth_blockNumber")
            #expect(first["status"] as? Int == 200)
            #expect(first["cu"] as? Int == 10)
            #expect(first["key"] as? String == String(key.prefix(11)))
            #expect((first["latency_us"] as? Int ?? -1) >= 0)
            #expect((first["upstream"] as? String)?.hasPrefix("127.0.0.1:") == true)
            #expect(logged.first { $0["request_id"] as? String == ids[5] }?["status"] as? Int == 401)
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(!text.contains(key))
        } catch {
            Issue.record(error)
        }
        try await gateway.stop()
        await node.stop()
    }
}
