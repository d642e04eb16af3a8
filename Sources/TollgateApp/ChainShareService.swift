import Logging
import ServiceLifecycle
import TollgateCore
import TollgateRedis
import TollgateUpstream

/// Shares each network's chain with the other replicas through Redis, every `interval`:
/// offers this replica's head and schedules the heads every replica may answer
/// (`ChainState.share`, released at one instant everywhere so that `eth_blockNumber` never
/// goes back across replicas), announces a reorg this replica saw, and drops head-bound cache
/// entries when another replica announces one. Redis away: each replica answers its own
/// monotonic head at once, and reorgs reach its cache at its own next health check.
struct ChainShareService: Service {
    let sync: RedisChainSync
    /// Each network's chain as the topology in force has it (a reload may add networks).
    let currentChains: @Sendable () -> [String: ChainTracker]
    var chains: [String: ChainTracker] { currentChains() }
    let interval: Duration
    let logger: Logger

    /// Every replica asks at least once within this, so a head is known everywhere before it
    /// is released.
    var releaseDelay: Duration { interval * 2 + .milliseconds(100) }

    init(sync: RedisChainSync, chains: @escaping @Sendable () -> [String: ChainTracker], interval: Duration, logger: Logger) {
        self.sync = sync
        self.currentChains = chains
        self.interval = interval
        self.logger = logger
        for chain in chains().values { chain.startSharing() }
    }

    func run() async throws {
        let chains = self.currentChains, logger = self.logger
        let subscription = sync.subscribe { network in
            guard let chain = chains()[network] else { return }
            chain.invalidate()
            logger.notice("reorg announced by another replica: head-bound cache entries dropped", metadata: ["network": "\(network)"])
        }
        var reorgs = chains().mapValues(\.reorgs)
        var sharing = true
        while !Task.isCancelled {
            var failed = false
            for (network, chain) in chains().sorted(by: { $0.key < $1.key }) where chain.reorgs > reorgs[network, default: 0] {
                reorgs[network] = chain.reorgs
                do { try await sync.announceReorg(network: network) } catch { failed = true }
            }
            if await !share() { failed = true }
            if failed == sharing {
                sharing = !failed
                if failed {
                    logger.warning("redis unreachable: each replica answers its own head (monotonic per replica, not across replicas)")
                } else {
                    logger.notice("redis reachable again: heads shared across replicas")
                }
            }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
        }
        subscription.cancel()
    }

    /// Offers every network's head and schedules what Redis says; false if Redis failed (the
    /// networks it failed for answer their own heads until it works again).
    @discardableResult
    func share() async -> Bool {
        var ok = true
        for (network, chain) in chains.sorted(by: { $0.key < $1.key }) where chain.head > 0 {
            let before = MonotonicClock.now()
            do {
                let heads = try await sync.share(network: network, head: chain.head, delay: releaseDelay)
                let after = MonotonicClock.now()
                // Redis's clock in ours: the reply's instant taken as the round trip's middle.
                let offset = heads.now * 1_000 - (before + (after - before) / 2)
                if !chain.isSharing { chain.startSharing() }
                chain.share(
                    released: heads.released,
                    upcoming: heads.upcoming.map { ChainState.SharedHead(number: $0.number, releaseAt: $0.releaseAt * 1_000 - offset) })
            } catch {
                ok = false
                chain.stopSharing()
            }
        }
        return ok
    }
}
