import Synchronization
import TollgateCore

/// One network's `ChainState`, shared by the health checker (which feeds it) and every event
/// loop (which reads it). Reads on the request path are atomic loads of the head, the
/// finalized number and the epoch; only the checker takes the lock.
public final class ChainTracker: Sendable {
    private let state: Mutex<ChainState>
    private let headBlock = Atomic<UInt64>(0)
    private let finalizedBlock = Atomic<UInt64>(0)
    private let epochValue = Atomic<UInt64>(0)
    private let servedBlock = Atomic<UInt64>(0)
    private let releaseAt = Atomic<Int64>(.max)

    /// Blocks taken as final for nodes that do not know the `finalized` tag.
    public let finalityDepth: UInt64

    public init(finalityDepth: UInt64 = 64) {
        self.finalityDepth = finalityDepth
        state = Mutex(ChainState(finalityDepth: finalityDepth))
    }

    /// The highest head an eligible node reported; 0 until one did. Never goes down.
    public var head: UInt64 { headBlock.load(ordering: .acquiring) }
    public var finalized: UInt64 { finalizedBlock.load(ordering: .acquiring) }
    /// Moves whenever the head's number or hash changes.
    public var epoch: UInt64 { epochValue.load(ordering: .acquiring) }
    public var reorgs: Int { state.withLock { $0.reorgs } }

    /// The head with its hash tag and the epoch they belong to, read together (the lock, not
    /// the atomics: only lookups that go on to the shared cache ask).
    public var snapshot: (head: ChainHead, epoch: UInt64) { state.withLock { ($0.chainHead, $0.epoch) } }

    /// Drops everything bound to the head (a reorg another replica saw).
    public func invalidate() {
        update { $0.invalidate() }
    }

    /// The head `eth_blockNumber` answers at `now`: an atomic load, and the lock only at the
    /// instant an upcoming shared head is released.
    public func served(now: Int64) -> UInt64 {
        if now >= releaseAt.load(ordering: .acquiring) { update { $0.release(now: now) } }
        return servedBlock.load(ordering: .acquiring)
    }

    public func startSharing() { update { $0.startSharing() } }
    public func stopSharing() { update { $0.stopSharing() } }
    public var isSharing: Bool { state.withLock { $0.sharing } }

    /// Heads other replicas know of, from Redis (`ChainState.share`).
    public func share(released: UInt64, upcoming: [ChainState.SharedHead]) {
        update { $0.share(released: released, upcoming: upcoming) }
    }

    private func update<T: Sendable>(_ body: (inout ChainState) -> T) -> T {
        state.withLock { chain in
            let result = body(&chain)
            finalizedBlock.store(chain.finalized, ordering: .releasing)
            epochValue.store(chain.epoch, ordering: .releasing)
            headBlock.store(chain.head, ordering: .releasing)
            servedBlock.store(chain.served, ordering: .releasing)
            releaseAt.store(chain.nextRelease, ordering: .releasing)
            return result
        }
    }

    /// One healthy node's report; returns what changed.
    @discardableResult
    public func observe(_ report: ChainState.Report) -> ChainState.Change {
        update { $0.observe(report) }
    }
}
