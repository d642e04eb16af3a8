import Testing
import TollgateCore

/// The `logs` sequence as transcripts: live logs, backfills and reorgs in, texts out.
@Suite struct LogSequencerTests {
    static func log(_ block: UInt64, _ index: UInt64, branch: Int = 0, removed: Bool = false) -> LogEntry {
        LogEntry(blockNumber: block, blockHash: "0x\(branch)-\(block)", logIndex: index, removed: removed,
            json: #"{"blockNumber":"\#(block)","blockHash":"0x\#(branch)-\#(block)","logIndex":"\#(index)","removed":\#(removed)}"#)
    }

    @Test func eachLogOnceAndRemovalsOfWhatWasSent() {
        var sequencer = LogSequencer()
        #expect(sequencer.live(Self.log(10, 0)).count == 1)
        #expect(sequencer.live(Self.log(10, 0)).isEmpty)
        #expect(sequencer.live(Self.log(10, 1)).count == 1)
        // The node takes 10/1 back: passed on once; a removal of something never sent is not.
        #expect(sequencer.live(Self.log(10, 1, removed: true)).count == 1)
        #expect(sequencer.live(Self.log(10, 1, removed: true)).isEmpty)
        #expect(sequencer.live(Self.log(11, 0, removed: true)).isEmpty)
        #expect(sequencer.resumeBlock == 10)
    }

    @Test func aBackfillSendsOnlyWhatWasMissedThenWhatWaited() {
        var sequencer = LogSequencer()
        _ = sequencer.live(Self.log(10, 0))
        sequencer.startBackfill()
        // A live log of the new node arrives before the backfill: it waits.
        #expect(sequencer.live(Self.log(13, 0)).isEmpty)
        let out = sequencer.backfilled([Self.log(12, 0), Self.log(10, 0), Self.log(11, 0), Self.log(13, 0)])
        #expect(out == [Self.log(11, 0).json, Self.log(12, 0).json, Self.log(13, 0).json])
        #expect(!sequencer.backfilling)
    }

    @Test func aReorgNobodyReportedIsTakenBackWithRemovedTrue() {
        var sequencer = LogSequencer()
        _ = sequencer.live(Self.log(10, 0))
        _ = sequencer.live(Self.log(11, 0))
        sequencer.startBackfill()
        // The new node is on another branch from 11.
        let out = sequencer.backfilled([Self.log(10, 0), Self.log(11, 0, branch: 1), Self.log(12, 0, branch: 1)])
        #expect(out.count == 3)
        #expect(out[0].contains(#""blockHash":"0x0-11""#) && out[0].contains(#""removed":true"#))
        #expect(out[1] == Self.log(11, 0, branch: 1).json)
        #expect(out[2] == Self.log(12, 0, branch: 1).json)
    }

    @Test func aFailedBackfillStillReleasesWhatWaited() {
        var sequencer = LogSequencer()
        _ = sequencer.live(Self.log(10, 0))
        sequencer.startBackfill()
        _ = sequencer.live(Self.log(12, 0))
        #expect(sequencer.backfilled(nil) == [Self.log(12, 0).json])
    }

    @Test func removedRewriting() {
        #expect(Self.log(1, 0).asRemoved.contains(#""removed":true"#))
        #expect(LogEntry(blockNumber: 1, blockHash: "h", logIndex: 0, removed: false, json: #"{"a":1}"#).asRemoved == #"{"removed":true,"a":1}"#)
    }
}
