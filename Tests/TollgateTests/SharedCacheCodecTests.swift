import NIOCore
import Testing
import TollgateCore
@testable import TollgateRedis

/// The shared cache's values and the chain facts replicas share, on plain values.
@Suite struct SharedCacheCodecTests {
    static let answer = #"{"jsonrpc":"2.0","id":7,"result":"0x10"}"#

    func entry(_ body: String, head: ChainHead? = nil) -> SharedCacheEntry {
        let buffer = ByteBuffer(string: body)
        let id = Array(body.utf8).firstIndex(of: UInt8(ascii: "7"))!
        return SharedCacheEntry(body: buffer, id: id..<(id + 1), head: head)
    }

    @Test func aSmallAnswerGoesAsItIsAndComesBackTheSame() throws {
        let small = entry(Self.answer)
        let value = SharedCacheCodec.encode(small, compressAbove: 1024)
        #expect(value.readableBytes == 26 + Self.answer.utf8.count)
        #expect(value.getInteger(at: 1, as: UInt8.self) == 0)
        #expect(SharedCacheCodec.decode(value) == small)
        let bound = entry(Self.answer, head: ChainHead(number: 0x1234, hashTag: 99))
        #expect(SharedCacheCodec.decode(SharedCacheCodec.encode(bound, compressAbove: 1024)) == bound)
    }

    @Test func aLargeAnswerIsDeflatedAndInflatesToTheSameBytes() throws {
        let hashes = (0..<200).map { #""0x\#(String(repeating: String($0 % 10), count: 64))""# }.joined(separator: ",")
        let body = #"{"jsonrpc":"2.0","id":7,"result":{"transactions":[\#(hashes)]}}"#
        let large = entry(body, head: nil)
        let value = SharedCacheCodec.encode(large, compressAbove: 1024)
        #expect(value.getInteger(at: 1, as: UInt8.self) == 1)
        #expect(value.readableBytes < body.utf8.count / 4)
        let back = try #require(SharedCacheCodec.decode(value))
        #expect(String(buffer: back.body) == body)
        #expect(back.id == large.id)
        #expect(back.head == nil)
    }

    @Test func aValueThatDoesNotParseIsAMissNotAnAnswer() {
        let good = SharedCacheCodec.encode(entry(Self.answer), compressAbove: 1024)
        #expect(SharedCacheCodec.decode(ByteBuffer(string: "garbage")) == nil)
        #expect(SharedCacheCodec.decode(good.getSlice(at: 0, length: 20)!) == nil)  // truncated header
        var otherVersion = good
        otherVersion.setInteger(UInt8(9), at: 0)
        #expect(SharedCacheCodec.decode(otherVersion) == nil)
        var idOutside = good
        idOutside.setInteger(UInt32(5000), at: 22)  // the id's end past the answer
        #expect(SharedCacheCodec.decode(idOutside) == nil)
        var notDeflated = good
        notDeflated.setInteger(UInt8(1), at: 1)  // says compressed, is not
        #expect(SharedCacheCodec.decode(notDeflated) == nil)
    }

    @Test func keysAreFixedLengthPerNetwork() {
        let a = SharedCacheCodec.redisKey(network: "ethereum", key: Array("ethereum\0eth_call\0[1]".utf8))
        let b = SharedCacheCodec.redisKey(network: "ethereum", key: Array("ethereum\0eth_call\0[2]".utf8))
        #expect(a.hasPrefix("tollgate:cache:ethereum:") && a.utf8.count == "tollgate:cache:ethereum:".utf8.count + 64)
        #expect(a != b)
    }

    @Test func headTagsTellBlocksApartAndIgnoreCase() {
        #expect(ChainHead.tag(ofHash: "0xABcd") == ChainHead.tag(ofHash: "0xabcd"))
        #expect(ChainHead.tag(ofHash: "0x00000001") != ChainHead.tag(ofHash: "0x00000002"))
        #expect(ChainHead.tag(ofHash: nil) == 0)
    }

    @Test func reorgAnnouncementsNameANetworkAndSkipTheSender() {
        #expect(RedisChainSync.network(ofAnnouncement: "ethereum r1", ignoring: "r2") == "ethereum")
        #expect(RedisChainSync.network(ofAnnouncement: "ethereum r1", ignoring: "r1") == nil)
        #expect(RedisChainSync.network(ofAnnouncement: "ethereum", ignoring: "r1") == nil)
    }
}

/// Heads shared across replicas are answered at the instant Redis names, never lower than
/// one answered before; a reorg elsewhere drops head-bound entries here.
@Suite struct SharedChainStateTests {
    @Test func withoutSharingTheHeadIsAnsweredAtOnce() {
        var chain = ChainState(finalityDepth: 64)
        _ = chain.observe(.init(head: 100, hash: "0xa"))
        #expect(chain.served == 100)
        _ = chain.observe(.init(head: 90))
        #expect(chain.served == 100)
    }

    @Test func sharedHeadsAreAnsweredAtTheirReleaseInstant() {
        var chain = ChainState(finalityDepth: 64)
        chain.startSharing()
        _ = chain.observe(.init(head: 100, hash: "0xa"))
        #expect(chain.served == 0)  // this replica's own head waits for Redis's instant
        let epoch = chain.epoch
        chain.share(released: 100, upcoming: [.init(number: 101, releaseAt: 5_000), .init(number: 102, releaseAt: 6_000)])
        #expect(chain.served == 100)
        #expect(chain.head == 102 && chain.epoch == epoch + 1)  // moving-head reads wait for nodes that have it
        #expect(chain.nextRelease == 5_000)
        chain.release(now: 4_999)
        #expect(chain.served == 100)
        chain.release(now: 5_000)
        #expect(chain.served == 101 && chain.nextRelease == 6_000)
        chain.release(now: 7_000)
        #expect(chain.served == 102 && chain.nextRelease == .max)
        // Lower news changes nothing; the own nodes catching up are no reorg.
        chain.share(released: 101, upcoming: [])
        #expect(chain.served == 102)
        #expect(chain.observe(.init(head: 102, hash: "0xb")) == .none && chain.reorgs == 0)
    }

    @Test func headsFarAheadOfTheOwnNodesAreIgnored() {
        var chain = ChainState(finalityDepth: 64)
        chain.startSharing()
        chain.share(released: 500, upcoming: [])
        #expect(chain.served == 0 && chain.head == 0)  // no head of its own yet: nothing to compare with
        _ = chain.observe(.init(head: 100))
        chain.share(released: 100 + 65, upcoming: [.init(number: 100 + 70, releaseAt: 1)])
        #expect(chain.served == 0 && chain.head == 100)
        chain.share(released: 100 + 64, upcoming: [])
        #expect(chain.served == 164)
    }

    @Test func withoutRedisTheOwnHeadIsAnsweredAgain() {
        var chain = ChainState(finalityDepth: 64)
        chain.startSharing()
        _ = chain.observe(.init(head: 100))
        chain.share(released: 99, upcoming: [.init(number: 100, releaseAt: 9_000)])
        #expect(chain.served == 99)
        chain.stopSharing()
        #expect(chain.served == 100 && chain.nextRelease == .max)
        _ = chain.observe(.init(head: 101))
        #expect(chain.served == 101)
    }

    @Test func aReorgElsewhereMovesTheEpochAndTheHeadNamesItsHash() {
        var chain = ChainState(finalityDepth: 64)
        _ = chain.observe(.init(head: 100, hash: "0xa"))
        #expect(chain.chainHead == ChainHead(number: 100, hashTag: ChainHead.tag(ofHash: "0xa")))
        let epoch = chain.epoch
        chain.invalidate()
        #expect(chain.epoch == epoch + 1 && chain.head == 100)
    }

    @Test func redisHeadRepliesParseAndRefuseGarbage() throws {
        let reply = RESPValue.array([.bulk("1000000"), .bulk("100"), .bulk("102"), .bulk("999990"), .bulk("101"), .bulk("999000")])
        let heads = try #require(RedisChainSync.heads(reply, delay: .milliseconds(200)))
        #expect(heads.now == 1_000_000 && heads.released == 100)
        #expect(heads.upcoming.map(\.number) == [101, 102])
        #expect(heads.upcoming.map(\.releaseAt) == [1_199_000, 1_199_990])
        #expect(RedisChainSync.heads(.array([.bulk("1")]), delay: .zero) == nil)
        #expect(RedisChainSync.heads(.array([.bulk("1"), .bulk("x")]), delay: .zero) == nil)
        #expect(RedisChainSync.heads(.integer(3), delay: .zero) == nil)
    }
}
