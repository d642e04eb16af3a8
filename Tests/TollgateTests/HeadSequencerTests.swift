import Testing
import TollgateCore

/// The `newHeads` sequence as transcripts: heads and fetched blocks in, deliveries out.
@Suite struct HeadSequencerTests {
    /// Block `number` of branch `branch` (a reorg starts a new branch from some height).
    static func block(_ number: UInt64, branch: Int = 0, parentBranch: Int? = nil) -> BlockHead {
        BlockHead(number: number, hash: "0x\(branch)-\(number)", parentHash: number == 0 ? "0x" : "0x\(parentBranch ?? branch)-\(number - 1)",
            json: #"{"number":"\#(number)"}"#)
    }

    static func numbers(_ action: HeadSequencer.Action) -> [UInt64] {
        if case .deliver(let heads) = action { return heads.map(\.number) }
        return []
    }

    @Test func consecutiveHeadsGoOutAndDuplicatesAndLowerHeadsDoNot() {
        var sequencer = HeadSequencer()
        #expect(Self.numbers(sequencer.observe(Self.block(10))) == [10])
        #expect(Self.numbers(sequencer.observe(Self.block(11))) == [11])
        #expect(sequencer.observe(Self.block(11)) == .none)
        // A lagging node's older head after failover: never shown.
        #expect(sequencer.observe(Self.block(9)) == .none)
        #expect(Self.numbers(sequencer.observe(Self.block(12))) == [12])
    }

    @Test func aGapIsBackfilledOldestFirst() {
        var sequencer = HeadSequencer()
        _ = sequencer.observe(Self.block(10))
        // The next node's first head is 14: 13, 12, 11 are fetched, then 10 is known.
        #expect(sequencer.observe(Self.block(14)) == .fetch(13))
        #expect(sequencer.fetched(Self.block(13)) == .fetch(12))
        #expect(sequencer.fetched(Self.block(12)) == .fetch(11))
        #expect(sequencer.fetched(Self.block(11)) == .fetch(10))
        #expect(Self.numbers(sequencer.fetched(Self.block(10))) == [11, 12, 13, 14])
        #expect(Self.numbers(sequencer.observe(Self.block(15))) == [15])
    }

    @Test func aReorgSendsTheNewBranchFromTheCommonAncestor() {
        var sequencer = HeadSequencer()
        for n in UInt64(10)...12 { _ = sequencer.observe(Self.block(n)) }
        // Branch 1 forks after 10: its 13's parent is its own 12.
        #expect(sequencer.observe(Self.block(13, branch: 1)) == .fetch(12))
        #expect(sequencer.fetched(Self.block(12, branch: 1)) == .fetch(11))
        #expect(sequencer.fetched(Self.block(11, branch: 1, parentBranch: 0)) == .fetch(10))
        let action = sequencer.fetched(Self.block(10))
        guard case .deliver(let heads) = action else { Issue.record("expected a delivery"); return }
        #expect(heads.map(\.hash) == ["0x1-11", "0x1-12", "0x1-13"])
        #expect(sequencer.last?.hash == "0x1-13")
    }

    @Test func aSameHeightReplacementWalksToo() {
        var sequencer = HeadSequencer()
        for n in UInt64(10)...12 { _ = sequencer.observe(Self.block(n)) }
        #expect(sequencer.observe(Self.block(12, branch: 2, parentBranch: 0)) == .fetch(11))
        #expect(Self.numbers(sequencer.fetched(Self.block(11))) == [12])
        #expect(sequencer.last?.hash == "0x2-12")
    }

    @Test func headsDuringAWalkWaitAndAFailedFetchGivesUpOnTheGap() {
        var sequencer = HeadSequencer()
        _ = sequencer.observe(Self.block(10))
        #expect(sequencer.observe(Self.block(12)) == .fetch(11))
        #expect(sequencer.observe(Self.block(13)) == .none)
        // 11 arrives, the walk ends at 10, and the queued 13 follows 12.
        #expect(sequencer.fetched(Self.block(11)) == .fetch(10))
        #expect(Self.numbers(sequencer.fetched(Self.block(10))) == [11, 12, 13])
        #expect(Self.numbers(sequencer.observe(Self.block(16))) == [])
        #expect(sequencer.isWalking)
        // The node cannot give 15: 16 goes out as a new start.
        #expect(Self.numbers(sequencer.fetched(nil)) == [16])
        #expect(!sequencer.isWalking)
    }

    @Test func aWalkLongerThanTheBoundStops() {
        var sequencer = HeadSequencer(maxBackfill: 3)
        _ = sequencer.observe(Self.block(10))
        #expect(sequencer.observe(Self.block(100)) == .fetch(99))
        #expect(sequencer.fetched(Self.block(99)) == .fetch(98))
        #expect(sequencer.fetched(Self.block(98)) == .fetch(97))
        #expect(Self.numbers(sequencer.fetched(Self.block(97))) == [97, 98, 99, 100])
    }
}
