/// What Tollgate knows of one network's chain, as a value: the highest head an eligible node
/// reported (never lower than one already reported), the finalized number, and the hashes of
/// the last `finalityDepth` blocks seen, to tell a reorg from a new block.
///
/// Fed by the health checker's findings; read by the response cache (what is final, what moves
/// with the head) and by `eth_blockNumber`, answered from here so that a client never sees the
/// head go backwards because one node lags.
public struct ChainState: Sendable, Equatable {
    /// One node's report: its head, the head's hash and parent hash, and its finalized block
    /// (nil when the node does not know the `finalized` tag).
    public struct Report: Sendable, Equatable {
        public var head: UInt64
        public var hash: String?
        public var parentHash: String?
        public var finalized: UInt64?

        public init(head: UInt64, hash: String? = nil, parentHash: String? = nil, finalized: UInt64? = nil) {
            self.head = head
            self.hash = hash
            self.parentHash = parentHash
            self.finalized = finalized
        }
    }

    public enum Change: Sendable, Equatable {
        /// Nothing new (the same head, or a node behind it).
        case none
        /// The head moved up.
        case advanced(to: UInt64)
        /// A block already seen has another hash now: everything above `commonAncestor` is
        /// gone. The ancestor is the block below the first height seen to differ (a deeper
        /// reorg shows as more mismatches on later reports). Nothing above the finalized block
        /// is cached as immutable, and everything else lives only until the head changes
        /// (`epoch`), so a reorg can never leave a wrong answer in the cache.
        case reorg(commonAncestor: UInt64, newHead: UInt64)
    }

    public let finalityDepth: UInt64
    public private(set) var head: UInt64 = 0
    public private(set) var finalized: UInt64 = 0
    /// Bumped on every change of the head's number or hash: entries that live "until the next
    /// head" carry the epoch they were stored in.
    public private(set) var epoch: UInt64 = 0
    public private(set) var reorgs = 0
    /// The head `eth_blockNumber` answers: never lower than one answered before. Without
    /// sharing it is `head`; with replicas sharing heads it follows `head` by the release delay.
    public private(set) var served: UInt64 = 0
    public private(set) var sharing = false
    private var pending: [SharedHead] = []
    /// Hashes by height, for the last `finalityDepth` heights seen.
    private var hashes: [UInt64: String] = [:]

    public init(finalityDepth: UInt64 = 64) {
        self.finalityDepth = max(1, finalityDepth)
    }

    /// Takes one eligible node's report.
    public mutating func observe(_ report: Report) -> Change {
        var change = Change.none
        if let hash = report.hash, let known = hashes[report.head], known != hash {
            change = reorg(at: report.head, newHead: report.head)
        } else if let parent = report.parentHash, report.head > 0, let known = hashes[report.head - 1], known != parent {
            change = reorg(at: report.head - 1, newHead: report.head)
        }
        if report.head > head {
            head = report.head
            epoch &+= 1
            if case .none = change { change = .advanced(to: head) }
        } else if case .reorg = change {
            epoch &+= 1
        }
        if let hash = report.hash { hashes[report.head] = hash }
        if let parent = report.parentHash, report.head > 0, hashes[report.head - 1] == nil { hashes[report.head - 1] = parent }
        let final = report.finalized ?? (report.head > finalityDepth ? report.head - finalityDepth : 0)
        // Finality only moves forward, and never past what the node reports as its head.
        finalized = max(finalized, min(final, report.head))
        forget(below: head > finalityDepth ? head - finalityDepth : 0)
        settle()
        return change
    }

    private mutating func reorg(at height: UInt64, newHead: UInt64) -> Change {
        reorgs += 1
        // Heights at and above the changed one are no longer known.
        for known in hashes.keys where known >= height { hashes[known] = nil }
        return .reorg(commonAncestor: height > 0 ? height - 1 : 0, newHead: newHead)
    }

    private mutating func forget(below floor: UInt64) {
        guard hashes.count > Int(finalityDepth) * 2 else { return }
        for known in hashes.keys where known < floor { hashes[known] = nil }
    }

    /// The head as replicas name it (number and hash tag): what a shared cache entry about the
    /// moving head is bound to.
    public var chainHead: ChainHead { ChainHead(number: head, hashTag: ChainHead.tag(ofHash: hashes[head])) }

    /// Another replica saw a reorg on this network: everything bound to the head goes now,
    /// before this replica's own health checks see the new branch.
    public mutating func invalidate() {
        epoch &+= 1
    }

    /// One head as replicas share it: its number and the monotonic instant (this process's
    /// clock) from which every replica may answer it.
    public struct SharedHead: Sendable, Equatable {
        public var number: UInt64
        public var releaseAt: Int64

        public init(number: UInt64, releaseAt: Int64) {
            self.number = number
            self.releaseAt = releaseAt
        }
    }

    /// Replicas share heads: a head is answered (`served`) only from the instant Redis names
    /// for it, when every replica knows it, instead of as soon as this replica's nodes report it.
    public mutating func startSharing() {
        sharing = true
    }

    /// Redis is away: each replica answers its own head again (monotonic per replica).
    public mutating func stopSharing() {
        sharing = false
        pending = []
        settle()
    }

    /// What Redis said after this replica offered its head: `released`, a head every replica
    /// may answer now, and `upcoming` heads with the instant each may be answered. Heads
    /// further than `finalityDepth` ahead of this replica's own are not this chain's (a
    /// misconfigured or lying node elsewhere) and are ignored; the head itself rises to the
    /// highest one taken, so moving-head reads stay with nodes that have it.
    public mutating func share(released: UInt64, upcoming: [SharedHead]) {
        guard head > 0 else { return }
        let limit = head + finalityDepth
        if released <= limit { served = max(served, released) }
        for next in upcoming where next.number > served && next.number <= limit && !pending.contains(where: { $0.number == next.number }) {
            pending.append(next)
        }
        pending.sort { $0.number < $1.number }
        let highest = max(released <= limit ? released : 0, pending.last?.number ?? 0)
        if highest > head {
            head = highest
            epoch &+= 1
        }
    }

    /// Answers the upcoming heads whose instant has come.
    public mutating func release(now: Int64) {
        while let next = pending.first, next.releaseAt <= now {
            served = max(served, next.number)
            pending.removeFirst()
        }
    }

    /// When the next upcoming head may be answered (`Int64.max`: none).
    public var nextRelease: Int64 { pending.first?.releaseAt ?? .max }

    /// Without sharing, the head is answered as soon as it is known.
    private mutating func settle() {
        if !sharing { served = max(served, head) }
    }

    /// Whether block `number` is final: no reorg can change it.
    public func isFinal(_ number: UInt64) -> Bool { finalized > 0 && number <= finalized }

    /// The hash seen for a height, if any (tests, status).
    public func hash(at height: UInt64) -> String? { hashes[height] }
}
