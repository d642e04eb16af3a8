/// One block header as a `newHeads` subscription carries it: the numbers and hashes that
/// order it, and the node's JSON for it, sent on unchanged.
public struct BlockHead: Sendable, Equatable {
    public var number: UInt64
    public var hash: String
    public var parentHash: String
    /// The header object exactly as the node sent it.
    public var json: String

    public init(number: UInt64, hash: String, parentHash: String, json: String) {
        self.number = number
        self.hash = hash
        self.parentHash = parentHash
        self.json = json
    }
}

/// Turns the heads one node after another reports into the sequence every `newHeads`
/// subscriber sees: each block once, in order, without gaps, never a lower head after a
/// higher one, and on a reorg the new branch from the common ancestor up.
///
/// A head that does not extend the last one sent (a gap after a failover or a stall, or
/// another branch) starts a walk back: the node is asked for the blocks below it, one by
/// one, until one is a block already sent (the ancestor); then the walked branch goes out
/// oldest first. Pure: heads in, actions out; the feed performs the fetches
/// (`eth_getBlockByNumber` through the network's pool) and hands the blocks back.
public struct HeadSequencer: Sendable {
    public enum Action: Sendable, Equatable {
        /// Send these heads to every subscriber, in this order.
        case deliver([BlockHead])
        /// Fetch the block with this number and pass it to `fetched`.
        case fetch(UInt64)
        case none
    }

    /// Blocks sent, by number, for the last `window` numbers: how an ancestor is recognised.
    private var sent: [UInt64: String] = [:]
    public private(set) var last: BlockHead?
    /// The head being linked to what was sent, and the blocks walked below it (highest first).
    private var walk: [BlockHead] = []
    /// A head that arrived during a walk: looked at once the walk ends.
    private var queued: BlockHead?
    public let window: UInt64
    /// The longest walk: past it the heads before the walk are given up on (a node that was
    /// away for hours does not make every client replay a day of blocks).
    public let maxBackfill: Int

    public init(window: UInt64 = 512, maxBackfill: Int = 256) {
        self.window = window
        self.maxBackfill = maxBackfill
    }

    public var isWalking: Bool { !walk.isEmpty }

    /// A head from the node serving the subscription.
    public mutating func observe(_ head: BlockHead) -> Action {
        if isWalking {
            if head.number >= (queued?.number ?? 0) { queued = head }
            return .none
        }
        return consider(head)
    }

    /// The block a `.fetch` asked for; nil when the node could not give it.
    public mutating func fetched(_ block: BlockHead?) -> Action {
        guard let top = walk.last else { return .none }
        guard let block, block.number + 1 == top.number, block.hash == top.parentHash else {
            // The node moved under the walk, or failed: send the head the walk began with as
            // a new start (subscribers see a jump rather than nothing), then carry on.
            let head = walk[0]
            walk = []
            return finish(deliver: [head])
        }
        if sent[block.number] == block.hash {
            // The ancestor: the walked branch goes out oldest first.
            let branch = Array(walk.reversed())
            walk = []
            return finish(deliver: branch)
        }
        walk.append(block)
        if walk.count > maxBackfill || block.number == 0 {
            let branch = Array(walk.reversed())
            walk = []
            return finish(deliver: branch)
        }
        return .fetch(block.number - 1)
    }

    private mutating func consider(_ head: BlockHead) -> Action {
        guard let last else { return finish(deliver: [head]) }
        // Lower than what was sent: a lagging node; never shown.
        if head.number < last.number { return .none }
        if sent[head.number] == head.hash { return .none }
        if head.number == last.number + 1, head.parentHash == last.hash { return finish(deliver: [head]) }
        guard head.number > 0 else { return finish(deliver: [head]) }
        walk = [head]
        return .fetch(head.number - 1)
    }

    /// Records what goes out; a head queued during a walk is looked at next.
    private mutating func finish(deliver heads: [BlockHead]) -> Action {
        for head in heads {
            sent[head.number] = head.hash
            last = head
        }
        if let last, last.number >= window {
            let floor = last.number - window
            if sent.count > Int(window) * 2 { sent = sent.filter { $0.key > floor } }
        }
        guard let next = queued else { return .deliver(heads) }
        queued = nil
        switch consider(next) {
        case .deliver(let more): return .deliver(heads + more)
        case .fetch(let number):
            // Deliver what is ready; the caller asks again after sending (`pendingFetch`).
            pendingFetch = number
            return .deliver(heads)
        case .none: return .deliver(heads)
        }
    }

    /// A fetch the last `.deliver` left to be made (a queued head began a new walk).
    public private(set) var pendingFetch: UInt64?

    public mutating func takePendingFetch() -> UInt64? {
        defer { pendingFetch = nil }
        return pendingFetch
    }
}
