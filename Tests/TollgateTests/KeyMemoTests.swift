import NIOEmbedded
import Testing
@testable import TollgateCore
@testable import TollgateDataPlane
import TollgateUpstream

/// A connection's memo of its last key answers only for the same bytes, before the answer
/// expires, and while the loop's key cache has forgotten nothing since; the loop moves its
/// generation on every way it forgets.
@Suite struct KeyMemoTests {
    static let token = "tg_" + String(repeating: "a", count: 43)

    static func answer(expiresAt: Int64) -> KeyDirectory.Answer {
        KeyDirectory.Answer(lookup: .notFound, expiresAt: expiresAt)
    }

    static func find(_ memo: KeyMemo, _ token: String, generation: Int, now: Int64) -> KeyDirectory.Answer? {
        Array(token.utf8).withUnsafeBytes { memo.answer(for: $0, generation: generation, now: now) }
    }

    @Test func itAnswersForTheSameBytesOnly() {
        var memo = KeyMemo()
        #expect(Self.find(memo, Self.token, generation: 0, now: 0) == nil)
        Array(Self.token.utf8).withUnsafeBytes { memo.remember($0, Self.answer(expiresAt: 100), generation: 3) }
        #expect(Self.find(memo, Self.token, generation: 3, now: 10)?.expiresAt == 100)
        for other in [
            "tg_" + String(repeating: "a", count: 42) + "b", "tg_" + String(repeating: "a", count: 42), Self.token + "a", "",
        ] {
            #expect(Self.find(memo, other, generation: 3, now: 10) == nil, "\(other)")
        }
    }

    @Test func itStopsAnsweringWhenTheAnswerExpiresOrTheLoopForgets() {
        var memo = KeyMemo()
        Array(Self.token.utf8).withUnsafeBytes { memo.remember($0, Self.answer(expiresAt: 100), generation: 3) }
        #expect(Self.find(memo, Self.token, generation: 3, now: 100) == nil)
        #expect(Self.find(memo, Self.token, generation: 4, now: 10) == nil)
        // Another key on the same connection replaces it.
        let other = "tg_" + String(repeating: "b", count: 43)
        Array(other.utf8).withUnsafeBytes { memo.remember($0, Self.answer(expiresAt: 200), generation: 4) }
        #expect(Self.find(memo, other, generation: 4, now: 150)?.expiresAt == 200)
        #expect(Self.find(memo, Self.token, generation: 4, now: 10) == nil)
    }

    @Test func aTokenLongerThanItsStorageIsNotKept() {
        var memo = KeyMemo()
        let long = String(repeating: "k", count: KeyMemo.capacity + 1)
        Array(long.utf8).withUnsafeBytes { memo.remember($0, Self.answer(expiresAt: 100), generation: 0) }
        #expect(Self.find(memo, long, generation: 0, now: 10) == nil)
        #expect(Self.find(memo, String(long.dropLast()), generation: 0, now: 10) == nil)
    }

    @Test func theLoopMovesItsGenerationWheneverItForgetsAnAnswer() {
        let loop = LoopState(eventLoop: EmbeddedEventLoop(), pools: [:], maxCachedKeys: 2)
        let print = { (text: String) in Array(text.utf8).withUnsafeBytes { TokenFingerprint($0) } }
        var seen = loop.keyGeneration
        func moved() -> Bool {
            defer { seen = loop.keyGeneration }
            return loop.keyGeneration != seen
        }
        loop.remember(print("a"), Self.answer(expiresAt: 100))
        loop.remember(print("b"), Self.answer(expiresAt: 100))
        #expect(!moved(), "remembering forgets nothing")
        #expect(loop.cachedKey(print("a"), now: 50) != nil)
        #expect(!moved(), "a hit forgets nothing")
        #expect(loop.cachedKey(print("a"), now: 100) == nil)
        #expect(moved(), "an expired answer is forgotten")
        loop.remember(print("c"), Self.answer(expiresAt: 100))
        loop.remember(print("d"), Self.answer(expiresAt: 100))
        #expect(moved(), "a full cache is emptied")
        loop.invalidate(prefix: "tg_abc")
        #expect(moved(), "a revoked key")
        loop.forgetKeys()
        #expect(moved(), "a reload")
    }
}


/// A connection's memo of its network answers for the same name only, and only while the loop's
/// pools and networks are the ones it was taken with; the loop moves its generation whenever
/// either is replaced.
@Suite struct NetworkMemoTests {
    final class Pool: UpstreamPool {
        let network: String
        init(_ network: String) { self.network = network }
        func execute(_ request: consuming UpstreamRequest, responder: any UpstreamResponder) {}
        func close() {}
    }

    @Test func itAnswersForTheSameNetworkAndGenerationOnly() {
        var memo = NetworkMemo()
        #expect(memo.network(generation: 0) == nil && memo.pool(for: "ethereum", generation: 0) == nil)
        let pool = Pool("ethereum")
        memo.remember("ethereum", pool: pool, generation: 2)
        #expect(memo.network(generation: 2) == "ethereum")
        #expect(memo.pool(for: "ethereum", generation: 2) === pool)
        #expect(memo.pool(for: "ethereum-sepolia", generation: 2) == nil)
        #expect(memo.pool(for: "ethereu", generation: 2) == nil)
        #expect(memo.network(generation: 3) == nil && memo.pool(for: "ethereum", generation: 3) == nil)
        let other = Pool("base")
        memo.remember("base", pool: other, generation: 3)
        #expect(memo.pool(for: "base", generation: 3) === other && memo.pool(for: "ethereum", generation: 3) == nil)
    }

    @Test func theLoopMovesItsGenerationWhenPoolsOrNetworksAreReplaced() {
        let state = LoopState(eventLoop: EmbeddedEventLoop(), pools: [:])
        var seen = state.routingGeneration
        state.pools = ["ethereum": Pool("ethereum")]
        #expect(state.routingGeneration != seen)
        seen = state.routingGeneration
        state.networks = ["ethereum"]
        #expect(state.routingGeneration != seen)
    }
}
