/// Which ClickHouse nodes may hold each batch this process made: the ones an INSERT of it was
/// sent to without an answer that settled it (no answer, or an error answer).
///
/// Before a batch is sent again, the nodes that may hold it are asked (`BatchIdentity`); a node
/// that cannot answer keeps the batch spooled, since sending it elsewhere could store it twice.
/// Asking every configured node would be safe but would stall the whole spool behind one dead
/// node that never saw the batch (a spooled batch is replayed only after the one before it).
/// So the ledger narrows the question to the nodes the batch may have reached. Only for batches
/// this process encoded does it know the whole history; one found in the spool at start (an
/// earlier process may have sent it anywhere) has no entry, and every node is asked.
///
/// A pure value: the telemetry service keeps it behind a lock and feeds it what happened.
struct DeliveryLedger {
    /// Nodes each batch may have reached. No entry: the batch's history is unknown.
    private var reached: [BatchIdentity: Set<String>] = [:]
    /// Bounds the ledger while ClickHouse is away for long: past it, everything known so far is
    /// dropped, and those batches are checked on every node as after a restart (safe, slower).
    let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    var count: Int { reached.count }

    /// A batch this process just encoded: sent nowhere yet.
    mutating func made(_ batch: BatchIdentity) {
        if reached.count >= capacity { reached.removeAll(keepingCapacity: true) }
        if reached[batch] == nil { reached[batch] = [] }
    }

    /// An INSERT of `batch` went to `url` and may have been stored there (no answer, or an
    /// error answer). Ignored for a batch of unknown history: every node is asked anyway.
    mutating func mayHaveReached(_ batch: BatchIdentity, url: String) {
        reached[batch]?.insert(url)
    }

    /// The nodes to ask before sending `batch` again, in the order of `urls`; empty when it can
    /// be stored nowhere (this process never sent it, or every send was refused at connect).
    func nodesToAsk(_ batch: BatchIdentity, urls: [String]) -> [String] {
        guard let nodes = reached[batch] else { return urls }
        return urls.filter { nodes.contains($0) }
    }

    /// The batch is stored (or was found stored): nothing more to remember.
    mutating func settled(_ batch: BatchIdentity) {
        reached[batch] = nil
    }
}
