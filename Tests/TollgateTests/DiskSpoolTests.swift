import Foundation
import Testing
@testable import TollgateClickHouse

@Suite struct DiskSpoolTests {
    func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
    }

    func batch(_ index: Int) -> [UInt8] { Array(#"{"request_id":"r-\#(index)","padding":"\#(String(repeating: "x", count: index % 50))"}"#.utf8) }

    /// Reads and acknowledges everything, returning the payloads in order.
    func drain(_ spool: DiskSpool) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let record = try spool.oldest() {
            out.append(record.payload)
            try spool.acknowledge(record)
        }
        return out
    }

    @Test func replaysInOrderAcrossSegmentsAndDeletesWhatWasSent() throws {
        let dir = directory()
        let spool = try DiskSpool(settings: .init(directory: dir, segmentBytes: 300))
        for index in 0..<20 { #expect(try spool.append(batch(index))) }
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }
        #expect(segments.count > 3)
        #expect(try drain(spool) == (0..<20).map(batch))
        #expect(spool.isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }.isEmpty)
        // New batches after a drain are still found.
        #expect(try spool.append(batch(99)))
        #expect(try drain(spool) == [batch(99)])
    }

    @Test func aRestartResumesAfterTheLastAcknowledgedBatch() throws {
        let dir = directory()
        do {
            let spool = try DiskSpool(settings: .init(directory: dir, segmentBytes: 400, fsync: .always))
            for index in 0..<10 { _ = try spool.append(batch(index)) }
            for _ in 0..<4 {
                let record = try #require(try spool.oldest())
                try spool.acknowledge(record)
            }
            // The fifth is read but not acknowledged (the process dies mid-send).
            _ = try spool.oldest()
        }
        let reopened = try DiskSpool(settings: .init(directory: dir, segmentBytes: 400))
        #expect(try drain(reopened) == (4..<10).map(batch))
    }

    @Test func aTornTailIsSkippedAndCounted() throws {
        let dir = directory()
        let spool = try DiskSpool(settings: .init(directory: dir))
        for index in 0..<3 { _ = try spool.append(batch(index)) }
        // A crash mid-write leaves half a record at the end of the segment.
        let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).first { $0.hasSuffix(".seg") })
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/" + segment))
        handle.seekToEndOfFile()
        handle.write(Data([200, 0, 0, 0, 1, 2, 3, 4, 65, 66]))
        try handle.close()
        let reopened = try DiskSpool(settings: .init(directory: dir))
        #expect(try drain(reopened) == (0..<3).map(batch))
        #expect(reopened.corruptRecords == 1)
        // And the spool keeps working.
        #expect(try reopened.append(batch(7)))
        #expect(try drain(reopened) == [batch(7)])
    }

    @Test func aFlippedByteEndsItsSegmentButNotTheSpool() throws {
        let dir = directory()
        let spool = try DiskSpool(settings: .init(directory: dir, segmentBytes: 120))
        for index in 0..<8 { _ = try spool.append(batch(index)) }
        let segments = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segments.count >= 3)
        // Damage the first record of the second segment.
        let path = dir + "/" + segments[1]
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[DiskSpool.headerSize + 2] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: path))
        let reopened = try DiskSpool(settings: .init(directory: dir, segmentBytes: 120))
        let replayed = try drain(reopened)
        #expect(reopened.corruptRecords == 1)
        #expect(replayed.first == batch(0))
        #expect(replayed.last == batch(7))
        #expect(replayed.count < 8)
    }

    @Test func aFullSpoolRefusesInsteadOfGrowing() throws {
        let spool = try DiskSpool(settings: .init(directory: directory(), segmentBytes: 1000, maxBytes: 500))
        var accepted = 0
        while try spool.append(batch(1)) { accepted += 1 }
        #expect(accepted > 0)
        #expect(spool.bytes <= 500)
        // Draining makes room again.
        #expect(try drain(spool).count == accepted)
        #expect(spool.bytes == 0)
        #expect(try spool.append(batch(2)))
    }
}
