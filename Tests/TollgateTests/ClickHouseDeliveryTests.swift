import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import TollgateTestSupport
@testable import TollgateClickHouse

/// An INSERT goes to another node only when the first was never reached: one that was sent and
/// got no answer may be stored there, and a second node would store it twice.
@Suite struct ClickHouseDeliveryTests {
    @Test func onlyFailuresBeforeSendingCountAsNeverSent() {
        #expect(ClickHouseClient.neverSent(HTTPClientError.connectTimeout))
        #expect(ClickHouseClient.neverSent(IOError(errnoCode: ECONNREFUSED, reason: "connect")))
        #expect(!ClickHouseClient.neverSent(HTTPClientError.remoteConnectionClosed))
        #expect(!ClickHouseClient.neverSent(HTTPClientError.readTimeout))
        #expect(!ClickHouseClient.neverSent(IOError(errnoCode: ECONNRESET, reason: "read")))
    }

    @Test func anInsertMovesOnFromARefusedNodeButNotFromOneThatDidNotAnswer() async throws {
        let clickhouse = try await ClickHouseServer.start()
        let silent = try await FakeNode.start()
        silent.setMode(.drop)
        do {
            _ = try await clickhouse.query("CREATE TABLE default.delivery (x UInt32) ENGINE = MergeTree ORDER BY x")
            let insert = "INSERT INTO default.delivery FORMAT TabSeparated"
            // Refused (nothing listens on port 1): the next node takes it.
            let refusing = ClickHouseClient(urls: ["http://127.0.0.1:1", clickhouse.url], user: nil, password: nil)
            var reached: [String] = []
            for _ in 0..<2 { try await refusing.execute(insert, body: Array("1\n".utf8)) { reached.append($0) } }
            #expect(try await clickhouse.query("SELECT count() FROM default.delivery") == "2")
            // A refused node cannot hold the batch: a resend need not ask it (`DeliveryLedger`).
            #expect(reached.isEmpty)
            // Sent and dropped unanswered: the caller hears it; the next node is not tried.
            let dropping = ClickHouseClient(urls: [silent.url, clickhouse.url], user: nil, password: nil)
            var outcomes: [String] = []
            for _ in 0..<2 {
                do {
                    try await dropping.execute(insert, body: Array("2\n".utf8)) { reached.append($0) }
                    outcomes.append("stored")
                } catch let error as ClickHouseError {
                    if case .noAnswer = error { outcomes.append("no answer") } else { outcomes.append("\(error)") }
                }
            }
            // Round-robin: one call starts at the silent node (no answer), the other at ClickHouse.
            #expect(outcomes.sorted() == ["no answer", "stored"], "\(outcomes)")
            // The silent node may hold the unanswered one: a resend must ask it.
            #expect(reached == [silent.url])
            #expect(try await clickhouse.query("SELECT count() FROM default.delivery WHERE x = 2") == "1")
            try await refusing.http.shutdown()
            try await dropping.http.shutdown()
        } catch {
            Issue.record(error)
        }
        await silent.stop()
        await clickhouse.destroy()
    }
}
