import TollgateCore
import TollgateJSONRPC

/// What a `SubscriptionFeed` does next, decided by its kind's logic.
enum FeedAction: Equatable, Sendable {
    /// Send these results to every client, in order; `backfilled` of them were fetched.
    case deliver([String], backfilled: Int)
    /// Ask the network's HTTP pool this call; its result goes to `fetched(tag:result:)`.
    case fetch(tag: UInt64, body: String)
}

/// One subscription kind's rules on top of the shared feed: what to subscribe to, and how the
/// node's events (and the backfills it asks for) become what clients see. Pure values,
/// tested without sockets.
protocol FeedLogic: Sendable {
    var kind: String { get }
    /// `eth_subscribe`'s params as JSON text.
    var params: String { get }
    /// A node took over the upstream subscription (the first, or after a failover).
    mutating func nodeChanged() -> [FeedAction]
    mutating func event(_ result: String) -> [FeedAction]
    /// A fetch's result (nil: the pool could not answer, or the node had nothing).
    mutating func fetched(tag: UInt64, result: String?) -> [FeedAction]
}

/// `newHeads`: `HeadSequencer` (in order, no gaps, reorgs from the ancestor), and a node's heads
/// believed after `freshHeads` consecutive ones not behind what was sent.
struct HeadsLogic: FeedLogic {
    var sequencer = HeadSequencer()
    var fresh = 0
    var freshHeads = 2
    let kind = "newHeads"
    let params = #"["newHeads"]"#

    mutating func nodeChanged() -> [FeedAction] {
        fresh = 0
        return []
    }

    mutating func event(_ result: String) -> [FeedAction] {
        guard let head = Self.head(result) else { return [] }
        if fresh < freshHeads {
            if head.number + 1 >= (sequencer.last?.number ?? 0) { fresh += 1 } else { fresh = 0 }
            if fresh < freshHeads { return [] }
        }
        return actions(sequencer.observe(head), backfilled: 0)
    }

    mutating func fetched(tag: UInt64, result: String?) -> [FeedAction] {
        let block = result.flatMap(Self.head)
        return actions(sequencer.fetched(block), backfilled: block == nil ? 0 : 1)
    }

    private mutating func actions(_ action: HeadSequencer.Action, backfilled: Int) -> [FeedAction] {
        var out: [FeedAction] = []
        switch action {
        case .none: break
        case .deliver(let heads): out.append(.deliver(heads.map(\.json), backfilled: backfilled))
        case .fetch(let number): out.append(Self.fetch(number))
        }
        if let number = sequencer.takePendingFetch() { out.append(Self.fetch(number)) }
        return out
    }

    static func fetch(_ number: UInt64) -> FeedAction {
        .fetch(tag: number, body: #"{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x\#(String(number, radix: 16))",false]}"#)
    }

    /// A header from a node's JSON (a notification's result or a fetched block).
    static func head(_ json: String) -> BlockHead? {
        guard let value = RPCParams.parse(json), let number = RPCResponseReader.quantity(value["number"]?.jsonText),
            let hash = value["hash"]?.stringValue, let parent = value["parentHash"]?.stringValue
        else { return nil }
        return BlockHead(number: number, hash: hash, parentHash: parent, json: json)
    }
}

/// `logs` with one filter (its `address` and `topics`, canonical): `LogSequencer` (each log
/// once, `removed: true` for a replaced block), and after a node change, `eth_getLogs` from
/// the last block seen.
struct LogsLogic: FeedLogic {
    var sequencer = LogSequencer()
    /// The filter as canonical JSON: `{"address":…,"topics":…}` (either may be absent).
    let filter: String
    let kind = "logs"
    var params: String { #"["logs",\#(filter)]"# }

    init(filter: String) { self.filter = filter }

    /// The feed's filter from a client's params: only what selects logs counts (a node ignores
    /// block ranges in a subscription), so equal filters share one feed.
    static func filter(_ value: JSONValue?) -> String? {
        guard let value else { return "{}" }
        guard case .object = value else { return nil }
        var members: [String] = []
        for name in ["address", "topics"] {
            guard let member = value[name] else { continue }
            var bytes: [UInt8] = []
            member.canonical(into: &bytes)
            members.append(#""\#(name)":"# + String(decoding: bytes, as: UTF8.self).lowercased())
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    mutating func nodeChanged() -> [FeedAction] {
        guard let from = sequencer.resumeBlock else { return [] }
        sequencer.startBackfill()
        let range = #""fromBlock":"0x\#(String(from, radix: 16))","toBlock":"latest""#
        let filter = self.filter == "{}" ? "{" + range + "}" : "{" + range + "," + self.filter.dropFirst()
        return [.fetch(tag: from, body: #"{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[\#(filter)]}"#)]
    }

    mutating func event(_ result: String) -> [FeedAction] {
        guard let log = Self.entry(result) else { return [] }
        let out = sequencer.live(log)
        return out.isEmpty ? [] : [.deliver(out, backfilled: 0)]
    }

    mutating func fetched(tag: UInt64, result: String?) -> [FeedAction] {
        let logs: [LogEntry]? = result.flatMap { text in
            guard case .array(let items)? = RPCParams.parse(text) else { return nil }
            return items.compactMap { Self.entry($0.jsonText) }
        }
        let out = sequencer.backfilled(logs)
        return out.isEmpty ? [] : [.deliver(out, backfilled: min(out.count, logs?.count ?? 0))]
    }

    static func entry(_ json: String) -> LogEntry? {
        guard let value = RPCParams.parse(json), let number = RPCResponseReader.quantity(value["blockNumber"]?.jsonText),
            let hash = value["blockHash"]?.stringValue, let index = RPCResponseReader.quantity(value["logIndex"]?.jsonText)
        else { return nil }
        let removed = value["removed"] == .literal("true")
        return LogEntry(blockNumber: number, blockHash: hash, logIndex: index, removed: removed, json: json)
    }
}

/// `newPendingTransactions`: hashes as the node sends them. Pending transactions have no order
/// to keep and no history to read back; across a node change, some may be missed.
struct PendingLogic: FeedLogic {
    let kind = "newPendingTransactions"
    let params = #"["newPendingTransactions"]"#
    mutating func nodeChanged() -> [FeedAction] { [] }
    mutating func event(_ result: String) -> [FeedAction] { [.deliver([result], backfilled: 0)] }
    mutating func fetched(tag: UInt64, result: String?) -> [FeedAction] { [] }
}
