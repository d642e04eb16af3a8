import Testing
@testable import TollgateClickHouse

/// Which nodes are asked before a batch is sent again.
struct DeliveryLedgerTests {
    static let urls = ["http://a:8123", "http://b:8123", "http://c:8123"]

    static func batch(_ n: Int) -> BatchIdentity {
        let payload = #"{"ts":\#(n),"request_id":"r\#(n)","key_prefix":"tg_1","network":"eth"}"# + "\n"
            + #"{"ts":\#(n),"request_id":"s\#(n)","key_prefix":"tg_1","network":"eth"}"# + "\n"
        return BatchIdentity(payload: Array(payload.utf8))!
    }

    @Test func aBatchOfUnknownHistoryIsCheckedOnEveryNode() {
        let ledger = DeliveryLedger()
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls) == Self.urls)
    }

    @Test func aBatchMadeHereAndNeverSentIsCheckedNowhere() {
        var ledger = DeliveryLedger()
        ledger.made(Self.batch(1))
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls).isEmpty)
        #expect(ledger.nodesToAsk(Self.batch(2), urls: Self.urls) == Self.urls)
    }

    @Test func onlyTheNodesASendMayHaveReachedAreAsked() {
        var ledger = DeliveryLedger()
        ledger.made(Self.batch(1))
        ledger.mayHaveReached(Self.batch(1), url: Self.urls[2])
        ledger.mayHaveReached(Self.batch(1), url: Self.urls[0])
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls) == [Self.urls[0], Self.urls[2]])
        // Made again (the same rows spooled after the failure): what it may have reached stays.
        ledger.made(Self.batch(1))
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls) == [Self.urls[0], Self.urls[2]])
    }

    @Test func reachingIsIgnoredForABatchOfUnknownHistory() {
        var ledger = DeliveryLedger()
        ledger.mayHaveReached(Self.batch(1), url: Self.urls[1])
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls) == Self.urls)
        #expect(ledger.count == 0)
    }

    @Test func aSettledBatchIsForgotten() {
        var ledger = DeliveryLedger()
        ledger.made(Self.batch(1))
        ledger.settled(Self.batch(1))
        #expect(ledger.count == 0)
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls) == Self.urls)
    }

    @Test func pastItsCapacityTheLedgerForgetsAndFallsBackToAskingEveryNode() {
        var ledger = DeliveryLedger(capacity: 2)
        ledger.made(Self.batch(1))
        ledger.made(Self.batch(2))
        ledger.made(Self.batch(3))
        #expect(ledger.count == 1)
        #expect(ledger.nodesToAsk(Self.batch(1), urls: Self.urls) == Self.urls)
        #expect(ledger.nodesToAsk(Self.batch(3), urls: Self.urls).isEmpty)
    }
}
