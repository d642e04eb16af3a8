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

    public init(finalityDepth: UInt64 = 64) {
        state = Mutex(ChainState(finalityDepth: finalityDepth))
    }

    /// The highest head an eligible node reported; 0 until one did. Never goes down.
    public var head: UInt64 { headBlock.load(ordering: .acquiring) }
    public var finalized: UInt64 { finalizedBlock.load(ordering: .acquiring) }
    /// Moves whenever the head's number or hash changes.
    public var epoch: UInt64 { epochValue.load(ordering: .acquiring) }
    public var reorgs: Int { state.withLock { $0.reorgs } }

    /// One healthy node's report; returns what changed.
    @discardableResult
    public func observe(_ report: ChainState.Report) -> ChainState.Change {
        state.withLock { chain in
            let change = chain.observe(report)
            finalizedBlock.store(chain.finalized, ordering: .releasing)
            epochValue.store(chain.epoch, ordering: .releasing)
            headBlock.store(chain.head, ordering: .releasing)
            return change
        }
    }
}
