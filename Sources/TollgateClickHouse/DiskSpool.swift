/// Telemetry batches that could not be sent yet, on disk, in order.
///
/// Append-only segment files (`spool-<sequence>.seg`); each record is
/// `[length: UInt32 LE][crc32: UInt32 LE][payload]`. A cursor file records how far replay has
/// been acknowledged, so a restart neither loses nor resends acknowledged batches; a crash
/// between a successful send and the cursor update resends that one batch (at-least-once).
/// A record whose header or checksum does not hold — a torn write at a crash, a flipped byte —
/// ends its segment: it and what follows in that segment are skipped and counted, never
/// crashing replay. When the spool is full, `append` refuses and the caller counts the drop.
///
/// Not thread-safe: owned by the telemetry service.
public final class DiskSpool {
    public enum FsyncPolicy: String, Sendable {
        /// fsync after every record: nothing acknowledged to the caller is lost on power loss.
        case always
        /// fsync when a segment is closed: a crash of the OS may lose the open segment's tail.
        case segment
        /// Leave it to the OS.
        case never
    }

    public struct Settings: Sendable {
        public var directory: String
        public var segmentBytes: Int
        public var maxBytes: Int
        public var fsync: FsyncPolicy

        public init(directory: String, segmentBytes: Int = 8 << 20, maxBytes: Int = 1 << 30, fsync: FsyncPolicy = .segment) {
            self.directory = directory
            self.segmentBytes = segmentBytes
            self.maxBytes = maxBytes
            self.fsync = fsync
        }
    }

    /// A spooled batch and where it sits, for `acknowledge`.
    public struct Record: Equatable, Sendable {
        public var payload: [UInt8]
        var segment: UInt64
        var end: Int
    }

    public let settings: Settings
    /// Segment sequence numbers on disk, oldest first.
    private var segments: [UInt64]
    /// Acknowledged position: (segment, offset).
    private var cursor: (segment: UInt64, offset: Int)
    private var writeSize: Int
    public private(set) var bytes: Int
    /// Records found damaged and skipped during replay.
    public private(set) var corruptRecords = 0

    static let headerSize = 8

    public init(settings: Settings) throws {
        self.settings = settings
        try SpoolFiles.makeDirectory(settings.directory)
        let names = try SpoolFiles.list(settings.directory)
        segments = names.compactMap { name in
            guard name.hasPrefix("spool-"), name.hasSuffix(".seg") else { return nil }
            return UInt64(name.dropFirst(6).dropLast(4))
        }.sorted()
        cursor = (segments.first ?? 1, 0)
        if let saved = try? SpoolFiles.read(settings.directory + "/cursor"), saved.count == 16 {
            let segment = saved[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            let offset = saved[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            if segments.contains(segment) { cursor = (segment, Int(offset)) }
        }
        let directory = settings.directory
        bytes = segments.reduce(0) { $0 + SpoolFiles.size(DiskSpool.path(directory, $1)) }
        writeSize = segments.last.map { SpoolFiles.size(DiskSpool.path(directory, $0)) } ?? 0
        if segments.isEmpty { segments = [cursor.segment] }
    }

    public var isEmpty: Bool {
        guard let last = segments.last else { return true }
        return cursor.segment == last && cursor.offset >= writeSize
    }

    /// Appends one batch. Returns false, writing nothing, when the spool is full.
    public func append(_ payload: [UInt8]) throws -> Bool {
        let size = Self.headerSize + payload.count
        guard bytes + size <= settings.maxBytes else { return false }
        if writeSize > 0, writeSize + size > settings.segmentBytes {
            if settings.fsync == .segment, let last = segments.last {
                try SpoolFiles.append([], to: Self.path(settings.directory, last), sync: true)
            }
            segments.append((segments.last ?? 0) + 1)
            writeSize = 0
        }
        var record: [UInt8] = []
        record.reserveCapacity(size)
        Self.appendLE(UInt32(payload.count), to: &record)
        Self.appendLE(CRC32.checksum(payload), to: &record)
        record.append(contentsOf: payload)
        try SpoolFiles.append(record, to: Self.path(settings.directory, segments.last!), sync: settings.fsync == .always)
        writeSize += size
        bytes += size
        return true
    }

    /// The oldest batch not yet acknowledged, or nil when there is none.
    public func oldest() throws -> Record? {
        while true {
            guard let index = segments.firstIndex(of: cursor.segment) else { return nil }
            let segment = segments[index]
            let data = (try? SpoolFiles.read(Self.path(settings.directory, segment))) ?? []
            if cursor.offset < data.count {
                if let record = Self.record(in: data, at: cursor.offset, segment: segment) { return record }
                // Damaged: skip the rest of this segment.
                corruptRecords += 1
                if index == segments.count - 1 {
                    // The write segment: start a fresh one so new batches are readable.
                    segments.append(segment + 1)
                    writeSize = 0
                }
                try advance(pastSegmentAt: index)
                continue
            }
            guard index < segments.count - 1 else { return nil }
            try advance(pastSegmentAt: index)
        }
    }

    /// Marks `record` as sent: replay will not return it again, even after a restart.
    public func acknowledge(_ record: Record) throws {
        cursor = (record.segment, record.end)
        if isEmpty, let last = segments.last {
            // Everything sent: drop the write segment too, so its bytes stop counting.
            SpoolFiles.remove(Self.path(settings.directory, last))
            segments = [last + 1]
            cursor = (last + 1, 0)
            writeSize = 0
            bytes = 0
        }
        try saveCursor()
        // A fully read segment that is not the write segment can go.
        if let index = segments.firstIndex(of: record.segment), index < segments.count - 1 {
            let data = (try? SpoolFiles.read(Self.path(settings.directory, record.segment))) ?? []
            if record.end >= data.count { try advance(pastSegmentAt: index) }
        }
    }

    private func advance(pastSegmentAt index: Int) throws {
        let segment = segments[index]
        let path = Self.path(settings.directory, segment)
        bytes -= SpoolFiles.size(path)
        SpoolFiles.remove(path)
        segments.remove(at: index)
        cursor = (segments.first ?? segment + 1, 0)
        if segments.isEmpty {
            segments = [cursor.segment]
            writeSize = 0
        }
        try saveCursor()
    }

    private func saveCursor() throws {
        var data: [UInt8] = []
        for shift in stride(from: 0, to: 64, by: 8) { data.append(UInt8(truncatingIfNeeded: cursor.segment >> UInt64(shift))) }
        for shift in stride(from: 0, to: 64, by: 8) { data.append(UInt8(truncatingIfNeeded: UInt64(cursor.offset) >> UInt64(shift))) }
        try SpoolFiles.replace(settings.directory + "/cursor", with: data, sync: settings.fsync != .never)
    }

    private static func record(in data: [UInt8], at offset: Int, segment: UInt64) -> Record? {
        guard offset + headerSize <= data.count else { return nil }
        let length = Int(readLE(data, offset))
        let checksum = readLE(data, offset + 4)
        let start = offset + headerSize
        guard length <= data.count - start else { return nil }
        let payload = Array(data[start..<(start + length)])
        guard CRC32.checksum(payload) == checksum else { return nil }
        return Record(payload: payload, segment: segment, end: start + length)
    }

    static func path(_ directory: String, _ segment: UInt64) -> String {
        let digits = String(segment)
        return directory + "/spool-" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".seg"
    }

    private static func appendLE(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private static func readLE(_ data: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(data[offset + $1]) << (8 * UInt32($1)) }
    }
}
