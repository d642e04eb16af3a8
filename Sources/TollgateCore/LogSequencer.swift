/// One log as a `logs` subscription carries it: where it sits in the chain, and the node's JSON.
public struct LogEntry: Sendable, Equatable {
    public var blockNumber: UInt64
    public var blockHash: String
    public var logIndex: UInt64
    /// The node says the log's block left the chain (a reorg).
    public var removed: Bool
    public var json: String

    public init(blockNumber: UInt64, blockHash: String, logIndex: UInt64, removed: Bool, json: String) {
        self.blockNumber = blockNumber
        self.blockHash = blockHash
        self.logIndex = logIndex
        self.removed = removed
        self.json = json
    }

    /// The same log marked `"removed":true`, for a block the chain dropped.
    public var asRemoved: String {
        let bytes = Array(json.utf8)
        if let at = Self.find(Array(#""removed":false"#.utf8), in: bytes) {
            return String(decoding: bytes[..<at] + Array(#""removed":true"#.utf8) + bytes[(at + 16)...], as: UTF8.self)
        }
        if Self.find(Array(#""removed":true"#.utf8), in: bytes) != nil { return json }
        guard bytes.first == UInt8(ascii: "{") else { return json }
        return #"{"removed":true"# + (bytes.count > 1 && bytes[1] != UInt8(ascii: "}") ? "," : "") + json.dropFirst()
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// The `logs` a subscriber sees across node changes: every log exactly once (by block hash
/// and log index), and a log whose block was replaced sent again with `removed: true`, also
/// when the node that saw the reorg is not the one that sent the log.
///
/// When the serving node changes, what the old one may not have sent is read back with
/// `eth_getLogs` from the last block seen (`resumeBlock`); live logs that arrive meanwhile wait
/// until the backfill is in, so the order holds. Pure: logs in, JSON texts to send out.
public struct LogSequencer: Sendable {
    private struct Block: Sendable {
        var hash: String
        var logs: [LogEntry]
    }

    private var sent: [UInt64: Block] = [:]
    public private(set) var highest: UInt64?
    public private(set) var backfilling = false
    private var waiting: [LogEntry] = []
    public let window: UInt64

    public init(window: UInt64 = 256) {
        self.window = window
    }

    /// Where a backfill begins: the last block a log was seen in (read again: what was sent of
    /// it is recognised and not sent twice). Nil before any log.
    public var resumeBlock: UInt64? { highest }

    public mutating func startBackfill() { backfilling = true }

    /// A log from the serving node's subscription.
    public mutating func live(_ log: LogEntry) -> [String] {
        if backfilling {
            waiting.append(log)
            return []
        }
        return accept(log)
    }

    /// The backfill's answer (nil: it failed, and the gap is given up on); then what waited.
    public mutating func backfilled(_ logs: [LogEntry]?) -> [String] {
        backfilling = false
        var out: [String] = []
        if let logs {
            let ordered = logs.sorted { ($0.blockNumber, $0.logIndex) < ($1.blockNumber, $1.logIndex) }
            for log in ordered where !log.removed { out += accept(log) }
        }
        let queued = waiting
        waiting = []
        for log in queued { out += accept(log) }
        return out
    }

    private mutating func accept(_ log: LogEntry) -> [String] {
        if log.removed {
            // Only what was sent is taken back.
            guard var block = sent[log.blockNumber], block.hash == log.blockHash,
                let index = block.logs.firstIndex(where: { $0.logIndex == log.logIndex })
            else { return [] }
            block.logs.remove(at: index)
            sent[log.blockNumber] = block.logs.isEmpty ? nil : block
            return [log.json]
        }
        var out: [String] = []
        if var block = sent[log.blockNumber] {
            if block.hash == log.blockHash {
                guard !block.logs.contains(where: { $0.logIndex == log.logIndex }) else { return [] }
                block.logs.append(log)
                sent[log.blockNumber] = block
            } else {
                // Another branch at a height already sent, and nobody said so: what was sent
                // from the old block is taken back first.
                out = block.logs.map(\.asRemoved)
                sent[log.blockNumber] = Block(hash: log.blockHash, logs: [log])
            }
        } else {
            sent[log.blockNumber] = Block(hash: log.blockHash, logs: [log])
        }
        highest = max(highest ?? 0, log.blockNumber)
        if let highest, highest > window, sent.count > Int(window) {
            let floor = highest - window
            sent = sent.filter { $0.key > floor }
        }
        return out + [log.json]
    }
}
