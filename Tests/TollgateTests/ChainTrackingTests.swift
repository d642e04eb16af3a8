import Logging
import NIOCore
import NIOPosix
import Testing
import TollgateCore
import TollgateTestSupport
import TollgateUpstream

/// The health checker feeding each network's chain state from real (fake) nodes on sockets:
/// the head never goes back, finality comes from the tag or the depth, a reorg is seen.
@Suite struct ChainTrackingTests {
    static func checker(_ nodes: [FakeNode], finalityDepth: UInt64 = 64) throws -> (HealthChecker, NodeHealthBoard) {
        let upstreams = try nodes.map { try #require(UpstreamNode(url: $0.url)) }
        var network = UpstreamNetwork(name: "ethereum", nodes: upstreams)
        network.finalityDepth = finalityDepth
        let board = NodeHealthBoard(nodes: nodes.count, finalityDepth: finalityDepth)
        let checker = HealthChecker(
            targets: [.init(network: network, chainID: 1, board: board)], eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            tls: nil, timeout: .seconds(2), logger: Logger(label: "test"))
        return (checker, board)
    }

    @Test func theChainHeadIsTheHighestHealthyReportAndNeverGoesBack() async throws {
        let ahead = try await FakeNode.start()
        let behind = try await FakeNode.start()
        behind.setHead(0x1234 - 5)
        let (checker, board) = try Self.checker([ahead, behind])
        let reports = await checker.checkAll()
        #expect(reports.allSatisfy { $0.healthy })
        #expect(board.chain.head == 0x1234)
        #expect(board.chain.finalized == 0x1234 - 32)  // the nodes' own finalized tag
        // The node that was ahead falls behind (a restart, a lagging replica): the head stays.
        ahead.setHead(0x1200)
        await checker.checkAll()
        #expect(board.chain.head == 0x1234)
        ahead.setHead(0x1240)
        await checker.checkAll()
        #expect(board.chain.head == 0x1240)
        await checker.close()
        await ahead.stop()
        await behind.stop()
    }

    @Test func aReorgIsToldFromANewBlockAndNodesWithoutTheTagFallBackToDepth() async throws {
        let node = try await FakeNode.start()
        node.setFinalizedDepth(nil)
        let (checker, board) = try Self.checker([node], finalityDepth: 10)
        await checker.checkAll()
        #expect(board.chain.finalized == 0x1234 - 10)
        let epoch = board.chain.epoch
        await checker.checkAll()
        #expect(board.chain.epoch == epoch && board.chain.reorgs == 0)  // the same head, the same hash: nothing moved
        node.reorg(depth: 3)
        let reports = await checker.checkAll()
        #expect(board.chain.reorgs == 1)
        #expect(board.chain.epoch > epoch)
        #expect(reports.first?.chainChange == .reorg(commonAncestor: 0x1234 - 1, newHead: 0x1234))
        // The next block on the new branch is a new block, not another reorg.
        node.setHead(0x1235)
        let next = await checker.checkAll()
        #expect(next.first?.chainChange == .advanced(to: 0x1235) && board.chain.reorgs == 1)
        await checker.close()
        await node.stop()
    }
}
