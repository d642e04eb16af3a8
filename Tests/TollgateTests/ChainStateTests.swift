import NIOCore
import Testing
import TollgateCore
import TollgateJSONRPC

/// The chain state the response cache will stand on: a head that never goes back, finality,
/// reorgs told from new blocks.
@Suite struct ChainStateTests {
    @Test func theHeadOnlyMovesUpAndALaggingNodeChangesNothing() {
        var chain = ChainState(finalityDepth: 64)
        #expect(chain.observe(.init(head: 100, hash: "0xa100", finalized: 90)) == .advanced(to: 100))
        let epoch = chain.epoch
        #expect(chain.observe(.init(head: 95, hash: "0xa95", finalized: 88)) == .none)
        #expect(chain.head == 100 && chain.finalized == 90 && chain.epoch == epoch)
        #expect(chain.isFinal(90) && !chain.isFinal(91))
    }

    @Test func withoutAFinalizedTagFinalityIsTheDepthBelowTheHead() {
        var chain = ChainState(finalityDepth: 64)
        _ = chain.observe(.init(head: 1000))
        #expect(chain.finalized == 936)
        // A node that reports more finality than its own head is not believed past its head.
        var odd = ChainState(finalityDepth: 10)
        _ = odd.observe(.init(head: 50, finalized: 70))
        #expect(odd.finalized == 50)
    }

    @Test func anotherHashAtASeenHeightIsAReorgAndMovesTheEpoch() {
        var chain = ChainState(finalityDepth: 64)
        _ = chain.observe(.init(head: 100, hash: "0xa100", parentHash: "0xa99", finalized: 80))
        _ = chain.observe(.init(head: 101, hash: "0xa101", parentHash: "0xa100", finalized: 80))
        let epoch = chain.epoch
        // The same height with another hash: the head's number does not move, its block did.
        #expect(chain.observe(.init(head: 101, hash: "0xb101", parentHash: "0xb100", finalized: 80)) == .reorg(commonAncestor: 100, newHead: 101))
        #expect(chain.epoch > epoch && chain.reorgs == 1 && chain.hash(at: 101) == "0xb101")
        // A new head whose parent is not the block we saw at that height: a reorg below it.
        _ = chain.observe(.init(head: 102, hash: "0xb102", parentHash: "0xb101", finalized: 80))
        #expect(chain.observe(.init(head: 103, hash: "0xc103", parentHash: "0xc102", finalized: 80)) == .reorg(commonAncestor: 101, newHead: 103))
        #expect(chain.head == 103 && chain.reorgs == 2)
    }

    @Test func paramsAreCanonicalWhateverTheWhitespaceAndKeyOrder() throws {
        let a = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{"to":"0xab","data":"0x01"},"latest"]}"#)
        let b = ByteBuffer(string: #"{ "method" : "eth_call", "params" : [ { "data" : "0x01" , "to" : "0xab" } , "latest" ], "id": 7, "jsonrpc": "2.0" }"#)
        func canonical(_ body: ByteBuffer) throws -> (String, JSONValue) {
            guard case .success(.single(.call(let call))) = RPCEnvelopeReader.read(body), let params = RPCParams.of(call, in: body) else {
                throw CancellationError()
            }
            var bytes: [UInt8] = []
            params.canonical(into: &bytes)
            return (String(decoding: bytes, as: UTF8.self), params)
        }
        let (first, params) = try canonical(a)
        let (second, _) = try canonical(b)
        #expect(first == #"[{"data":"0x01","to":"0xab"},"latest"]"#)
        #expect(first == second)
        #expect(params[1]?.stringValue == "latest" && params[0]?["to"]?.stringValue == "0xab" && params[2] == nil)
        let result = RPCParams.result(in: ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"result":{"blockNumber":"0x10","status":"0x1"}}"#))
        #expect(result?["blockNumber"]?.stringValue == "0x10")
        let none = ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#)
        #expect(try canonical(none).0 == "[]")
    }
}
