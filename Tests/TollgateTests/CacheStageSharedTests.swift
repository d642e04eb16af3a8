import NIOCore
import Testing
import TollgateCore
@testable import TollgateDataPlane
import TollgateUpstream

/// The cache stage's side of the shared tier on plain values, with the in-memory shared cache:
/// what is written there, and when another replica may adopt it.
@Suite struct CacheStageSharedTests {
    static let answer = ByteBuffer(string: #"{"jsonrpc":"2.0","id":7,"result":"0x10"}"#)
    static let key = Array("ethereum\u{0}eth_getBalance\u{0}[\"0xab\",\"latest\"]".utf8)

    func settings(_ shared: InMemorySharedResponseCache) -> ResponseCacheSettings {
        ResponseCacheSettings(maxBytes: 1 << 20, shared: shared)
    }

    @Test func anAnswerAboutTheHeadIsSharedBoundToThatHeadAndAdoptedOnlyThere() async throws {
        let shared = InMemorySharedResponseCache()
        let chain = ChainTracker()
        chain.observe(.init(head: 100, hash: "0xa"))
        let pending = CacheStage.Pending(key: Self.key, lifetime: .untilHead, epoch: chain.epoch, method: "eth_getBalance")
        let here = ResponseCacheStore(maxBytes: 1 << 20)
        CacheStage.store(pending, answer: Self.answer, nodeHead: 100, chain: chain, cache: here, settings: settings(shared), now: 0,
            allocator: ByteBufferAllocator())
        #expect(shared.stores == 1)
        let entry = try #require(await shared.fetch(network: "ethereum", key: Self.key))
        #expect(entry.head == ChainHead(number: 100, hashTag: ChainHead.tag(ofHash: "0xa")))
        #expect(entry.body == Self.answer)

        // Another replica at the same block adopts it (and keeps it in-process under its epoch).
        let other = ChainTracker()
        other.observe(.init(head: 100, hash: "0xa"))
        let there = ResponseCacheStore(maxBytes: 1 << 20)
        let theirs = CacheStage.Pending(key: Self.key, lifetime: .untilHead, epoch: other.epoch, method: "eth_getBalance")
        #expect(CacheStage.adopt(entry, for: theirs, chain: other, cache: there, settings: settings(shared), now: 0))
        #expect(there.entry(Self.key, epoch: other.epoch, now: 1) != nil)
        // One at another block of the same height (a reorg), or further on, does not.
        let forked = ChainTracker()
        forked.observe(.init(head: 100, hash: "0xb"))
        #expect(!CacheStage.adopt(entry, for: theirs, chain: forked, cache: there, settings: settings(shared), now: 0))
        other.observe(.init(head: 101, hash: "0xc"))
        #expect(!CacheStage.adopt(entry, for: theirs, chain: other, cache: there, settings: settings(shared), now: 0))
    }

    @Test func anAnswerFromAnEpochThatMovedIsNeitherKeptNorShared() {
        let shared = InMemorySharedResponseCache()
        let chain = ChainTracker()
        chain.observe(.init(head: 100, hash: "0xa"))
        let pending = CacheStage.Pending(key: Self.key, lifetime: .untilHead, epoch: chain.epoch, method: "eth_getBalance")
        chain.observe(.init(head: 101, hash: "0xb"))  // the head moved while the node was asked
        let here = ResponseCacheStore(maxBytes: 1 << 20)
        CacheStage.store(pending, answer: Self.answer, nodeHead: 101, chain: chain, cache: here, settings: settings(shared), now: 0,
            allocator: ByteBufferAllocator())
        #expect(shared.stores == 0 && here.bytes == 0)
    }

    @Test func anImmutableAnswerIsAdoptedWhateverTheHead() async throws {
        let shared = InMemorySharedResponseCache()
        let chain = ChainTracker()
        chain.observe(.init(head: 100, hash: "0xa"))
        let key = Array("ethereum\u{0}eth_chainId\u{0}[]".utf8)
        let pending = CacheStage.Pending(key: key, lifetime: .immutable, epoch: chain.epoch, method: "eth_chainId")
        CacheStage.store(pending, answer: Self.answer, nodeHead: nil, chain: chain, cache: ResponseCacheStore(maxBytes: 1 << 20),
            settings: settings(shared), now: 0, allocator: ByteBufferAllocator())
        let entry = try #require(await shared.fetch(network: "ethereum", key: key))
        #expect(entry.head == nil)
        let elsewhere = ChainTracker()
        elsewhere.observe(.init(head: 5_000, hash: "0xf"))
        #expect(CacheStage.adopt(entry, for: pending, chain: elsewhere, cache: ResponseCacheStore(maxBytes: 1 << 20), settings: settings(shared), now: 0))
        // A shared cache that is away is a miss, not an error.
        shared.setDown(true)
        #expect(await shared.fetch(network: "ethereum", key: key) == nil)
    }
}
